package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/evaluate"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/optim"
	"github.com/lrtrain/lrtrain/param"
)

// Result is what one method reached.
type Result struct {
	Method          string                  `json:"method"`
	LR              float64                 `json:"lr"`
	TrainableParams int64                   `json:"trainable_params"`
	FinalTrainKL    float64                 `json:"final_train_kl"` // KL over the whole training set after the last step
	LastStepsKL     float64                 `json:"last_steps_kl"`  // mean training-batch KL of the last 10 steps
	EvalKL          float64                 `json:"eval_kl"`        // held-out KL after the last step
	Seconds         float64                 `json:"seconds"`
	Modules         []evaluate.AdapterStats `json:"-"`
	SRDelta         map[string]float64      `json:"stable_rank_delta"`
	SRBA            map[string]float64      `json:"stable_rank_ba"`
	// ConstShare is the mean over modules of ‖mean(ΔW)·𝟙𝟙ᵀ‖²_F / ‖ΔW‖²_F: the share of
	// the update that is one constant added to every entry (φ(0) ≠ 0 does that).
	ConstShare float64 `json:"const_share"`
}

// klSum is Σ p_t·(log p_t − log q) over all positions and the vocabulary, where p_t is
// the teacher's distribution (from its log-probs tlp) and q the student's (logits).
func klSum(logits, tlp *ts.Tensor) (*ts.Tensor, error) {
	lq, err := logits.LogSoftmax(-1, gotch.Float, false)
	if err != nil {
		return nil, err
	}
	defer lq.Drop()
	diff, err := tlp.Sub(lq, false)
	if err != nil {
		return nil, err
	}
	defer diff.Drop()
	p, err := tlp.Exp(false)
	if err != nil {
		return nil, err
	}
	defer p.Drop()
	prod, err := p.Mul(diff, false)
	if err != nil {
		return nil, err
	}
	defer prod.Drop()
	return prod.Sum(gotch.Float, false)
}

// meanKL is the mean per-token KL(teacher ‖ m) over the sequences, without autograd.
func meanKL(m *model.Model, tokens []int64, tlp *ts.Tensor, seqLen int) (float64, error) {
	n := len(tokens) / seqLen
	total := 0.0
	var err error
	for start := 0; start < n && err == nil; start += 32 {
		end := min(start+32, n)
		err = tensorkit.NoGrad(func() error {
			ids, err := model.Int64Tensor(tokens[start*seqLen:end*seqLen], int64(end-start), int64(seqLen))
			if err != nil {
				return err
			}
			defer ids.Drop()
			logits, err := m.Forward(model.Inputs{InputIDs: ids})
			if err != nil {
				return err
			}
			defer logits.Drop()
			part, err := tlp.Narrow(0, int64(start), int64(end-start), false)
			if err != nil {
				return err
			}
			defer part.Drop()
			kl, err := klSum(logits, part)
			if err != nil {
				return err
			}
			defer kl.Drop()
			v, err := tensorkit.Scalar(kl)
			total += v
			return err
		})
	}
	return total / float64(len(tokens)), err
}

// trainMethod trains rank-r adapters of method at peak learning rate lr on the student
// to imitate the teacher and measures the result. Per-step losses go to
// <out>/<method>-lr<lr>.metrics.jsonl.
func trainMethod(c Config, t *task, method string, lr float64, out string, progress func(string)) (*Result, error) {
	m, err := model.Load(t.base)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	spec, err := c.adapterSpec(method)
	if err != nil {
		return nil, err
	}
	if _, err := m.Inject(spec, rand.New(rand.NewPCG(c.Seed, 0xada))); err != nil {
		return nil, err
	}
	m.Train(true)
	count, err := m.CountParameters()
	if err != nil {
		return nil, err
	}
	params := param.Trainable(m.TrainableTensors())
	opt, err := optim.NewAdamW(params, optim.AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		return nil, err
	}
	defer opt.Close()
	f, err := os.Create(filepath.Join(out, runName(method, lr)+".metrics.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	enc := json.NewEncoder(f)

	res := &Result{Method: method, LR: lr, TrainableParams: count.Adapter}
	order := rand.New(rand.NewPCG(c.Seed, 0xda7a)) // the same batches for every method
	n := c.TrainSequences
	perm := order.Perm(n)
	var last []float64
	for step, pos := 0, 0; step < c.Steps; step++ {
		if pos+c.Batch > n {
			perm, pos = order.Perm(n), 0
		}
		idx := perm[pos : pos+c.Batch]
		pos += c.Batch
		loss, err := trainStep(m, t, c, idx)
		if err != nil {
			return nil, fmt.Errorf("%s step %d: %w", method, step+1, err)
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("%s step %d: loss %v", method, step+1, loss)
		}
		if _, err := optim.ClipGradNorm(params, c.GradClip); err != nil {
			return nil, err
		}
		if err := opt.Step(c.lrAt(lr, step)); err != nil {
			return nil, err
		}
		if err := opt.ZeroGrad(); err != nil {
			return nil, err
		}
		rec := map[string]any{"step": step + 1, "loss": loss, "lr": c.lrAt(lr, step)}
		if (step+1)%max(1, c.Steps/5) == 0 || step+1 == c.Steps {
			m.Train(false)
			ev, err := meanKL(m, t.eval, t.evalLP, c.SeqLen)
			m.Train(true)
			if err != nil {
				return nil, err
			}
			rec["eval_loss"] = ev
			progress(fmt.Sprintf("%-8s lr %-7g step %4d  train KL %.5f  held-out KL %.5f", method, lr, step+1, loss, ev))
		}
		if err := enc.Encode(rec); err != nil {
			return nil, err
		}
		if step >= c.Steps-10 {
			last = append(last, loss)
		}
	}
	m.Train(false)
	for _, l := range last {
		res.LastStepsKL += l / float64(len(last))
	}
	if res.FinalTrainKL, err = meanKL(m, t.train, t.trainLP, c.SeqLen); err != nil {
		return nil, err
	}
	if res.EvalKL, err = meanKL(m, t.eval, t.evalLP, c.SeqLen); err != nil {
		return nil, err
	}
	if res.Modules, err = evaluate.AnalyzeAdapters(m, evaluate.AnalyzeOptions{}); err != nil {
		return nil, err
	}
	if res.ConstShare, err = constShare(m); err != nil {
		return nil, err
	}
	res.SRDelta, res.SRBA = map[string]float64{}, map[string]float64{}
	for _, s := range res.Modules {
		res.SRDelta[s.Name], res.SRBA[s.Name] = s.SRDelta, s.SRBA
	}
	return res, nil
}

// trainStep runs forward and backward on the sequences idx and returns the mean
// per-token KL.
func trainStep(m *model.Model, t *task, c Config, idx []int) (float64, error) {
	ids := make([]int64, 0, len(idx)*c.SeqLen)
	rows := make([]int64, len(idx))
	for i, k := range idx {
		ids = append(ids, t.train[k*c.SeqLen:(k+1)*c.SeqLen]...)
		rows[i] = int64(k)
	}
	x, err := model.Int64Tensor(ids, int64(len(idx)), int64(c.SeqLen))
	if err != nil {
		return 0, err
	}
	defer x.Drop()
	ri, err := model.Int64Tensor(rows, int64(len(rows)))
	if err != nil {
		return 0, err
	}
	defer ri.Drop()
	tlp, err := t.trainLP.IndexSelect(0, ri, false)
	if err != nil {
		return 0, err
	}
	defer tlp.Drop()
	logits, err := m.Forward(model.Inputs{InputIDs: x})
	if err != nil {
		return 0, err
	}
	defer logits.Drop()
	sum, err := klSum(logits, tlp)
	if err != nil {
		return 0, err
	}
	defer sum.Drop()
	loss, err := sum.DivScalar(ts.FloatScalar(float64(len(ids))), false)
	if err != nil {
		return 0, err
	}
	defer loss.Drop()
	if err := loss.Backward(); err != nil {
		return 0, err
	}
	return tensorkit.Scalar(loss)
}

// runName names a (method, learning rate) run: "lrlora-lr0.001".
func runName(method string, lr float64) string { return fmt.Sprintf("%s-lr%g", method, lr) }

// constShare is the mean over m's adapters of n·mean(ΔW)²/‖ΔW‖²_F (n entries).
func constShare(m *model.Model) (float64, error) {
	total := 0.0
	for _, ad := range m.Adapters() {
		var vals []float32
		var err error
		err = tensorkit.NoGrad(func() error {
			dw, err := ad.DeltaWeight()
			if err != nil {
				return err
			}
			defer dw.Drop()
			vals, err = tensorkit.Float32s(dw)
			return err
		})
		if err != nil {
			return 0, err
		}
		var sum, sq float64
		for _, v := range vals {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		if sq > 0 {
			total += sum * sum / float64(len(vals)) / sq
		}
	}
	return total / float64(len(m.Adapters())), nil
}
