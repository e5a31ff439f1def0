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
	mr := &methodRun{c: c, t: t, method: method, lr: lr, progress: progress}
	defer mr.close()
	if err := mr.open(out); err != nil {
		return nil, err
	}
	res := &Result{Method: method, LR: lr, TrainableParams: mr.adapterParams}
	last, err := mr.train()
	if err != nil {
		return nil, err
	}
	for _, l := range last {
		res.LastStepsKL += l / float64(len(last))
	}
	return res, mr.measure(res)
}

// methodRun is one method's training: the student with its adapters, the optimizer,
// and the metrics file.
type methodRun struct {
	c             Config
	t             *task
	method        string
	lr            float64
	progress      func(string)
	m             *model.Model
	params        []ts.NamedTensor
	opt           *optim.AdamW
	f             *os.File
	enc           *json.Encoder
	adapterParams int64
}

// open loads the student, injects the method's adapters and creates the optimizer and
// the metrics file.
func (r *methodRun) open(out string) error {
	var err error
	if r.m, err = model.Load(r.t.base); err != nil {
		return err
	}
	spec, err := r.c.adapterSpec(r.method)
	if err != nil {
		return err
	}
	if _, err := r.m.Inject(spec, rand.New(rand.NewPCG(r.c.Seed, 0xada))); err != nil {
		return err
	}
	r.m.Train(true)
	count, err := r.m.CountParameters()
	if err != nil {
		return err
	}
	r.adapterParams = count.Adapter
	r.params = param.Trainable(r.m.TrainableTensors())
	if r.opt, err = optim.NewAdamW(r.params, optim.AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}); err != nil {
		return err
	}
	if r.f, err = os.Create(filepath.Join(out, runName(r.method, r.lr)+".metrics.jsonl")); err != nil {
		return err
	}
	r.enc = json.NewEncoder(r.f)
	return nil
}

func (r *methodRun) close() {
	if r.f != nil {
		r.f.Close()
	}
	if r.opt != nil {
		r.opt.Close()
	}
	if r.m != nil {
		r.m.Close()
	}
}

// train runs c.Steps optimizer steps on batches drawn the same way for every method,
// evaluating five times, and returns the last ten steps' losses.
func (r *methodRun) train() ([]float64, error) {
	c := r.c
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
		loss, err := r.step(step, idx)
		if err != nil {
			return nil, err
		}
		rec := map[string]any{"step": step + 1, "loss": loss, "lr": c.lrAt(r.lr, step)}
		if (step+1)%max(1, c.Steps/5) == 0 || step+1 == c.Steps {
			r.m.Train(false)
			ev, err := meanKL(r.m, r.t.eval, r.t.evalLP, c.SeqLen)
			r.m.Train(true)
			if err != nil {
				return nil, err
			}
			rec["eval_loss"] = ev
			r.progress(fmt.Sprintf("%-8s lr %-7g step %4d  train KL %.5f  held-out KL %.5f", r.method, r.lr, step+1, loss, ev))
		}
		if err := r.enc.Encode(rec); err != nil {
			return nil, err
		}
		if step >= c.Steps-10 {
			last = append(last, loss)
		}
	}
	return last, nil
}

// step is one optimizer step on the sequences idx: forward, backward, clipping, AdamW.
func (r *methodRun) step(step int, idx []int) (float64, error) {
	loss, err := trainStep(r.m, r.t, r.c, idx)
	if err != nil {
		return 0, fmt.Errorf("%s step %d: %w", r.method, step+1, err)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, fmt.Errorf("%s step %d: loss %v", r.method, step+1, loss)
	}
	if _, err := optim.ClipGradNorm(r.params, r.c.GradClip); err != nil {
		return 0, err
	}
	if err := r.opt.Step(r.c.lrAt(r.lr, step)); err != nil {
		return 0, err
	}
	return loss, r.opt.ZeroGrad()
}

// measure fills res with the trained student's KL on both sets, its adapters' stable
// ranks and the constant share of φ.
func (r *methodRun) measure(res *Result) error {
	r.m.Train(false)
	var err error
	if res.FinalTrainKL, err = meanKL(r.m, r.t.train, r.t.trainLP, r.c.SeqLen); err != nil {
		return err
	}
	if res.EvalKL, err = meanKL(r.m, r.t.eval, r.t.evalLP, r.c.SeqLen); err != nil {
		return err
	}
	if res.Modules, err = evaluate.AnalyzeAdapters(r.m, evaluate.AnalyzeOptions{}); err != nil {
		return err
	}
	if res.ConstShare, err = constShare(r.m); err != nil {
		return err
	}
	res.SRDelta, res.SRBA = map[string]float64{}, map[string]float64{}
	for _, s := range res.Modules {
		res.SRDelta[s.Name], res.SRBA[s.Name] = s.SRDelta, s.SRBA
	}
	return nil
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
