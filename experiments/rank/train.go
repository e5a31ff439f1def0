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

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/evaluate"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/optim"
	"github.com/lrtrain/lrtrain/param"
)

// Result is what one run (a cell of the grid: teacher, rank, variant, seed, learning
// rate) reached.
type Result struct {
	Section         string                  `json:"section"` // main or ablation
	Teacher         string                  `json:"teacher"`
	Rank            int                     `json:"rank"`
	Variant         string                  `json:"variant"`
	Method          string                  `json:"method"`
	Seed            uint64                  `json:"seed"`
	LR              float64                 `json:"lr"`
	TrainableParams int64                   `json:"trainable_params"`
	FinalTrainKL    float64                 `json:"final_train_kl"` // KL over the whole training set after the last step
	LastStepsKL     float64                 `json:"last_steps_kl"`  // mean training-batch KL of the last 10 steps
	EvalKL          float64                 `json:"eval_kl"`        // held-out (test) KL after the last step, reported
	ValKL           float64                 `json:"val_kl"`         // validation KL after the last step, for choosing lr
	FirstLoss       float64                 `json:"first_loss"`     // training-batch KL of step 1, before any update
	Seconds         float64                 `json:"seconds"`
	CPUSeconds      float64                 `json:"cpu_seconds"` // user + system time of the process during the run
	Modules         []evaluate.AdapterStats `json:"-"`
	SRDelta         map[string]float64      `json:"stable_rank_delta"`
	SRBA            map[string]float64      `json:"stable_rank_ba"`
	// ConstShare is the mean over modules of ‖mean(ΔW)·𝟙𝟙ᵀ‖²_F / ‖ΔW‖²_F: the share of
	// the update that is one constant added to every entry (φ(0) ≠ 0 does that).
	ConstShare float64 `json:"const_share"`
}

// trainCell trains the cell's adapters on the student to imitate t's teacher and
// measures the result. Per-step losses go to <out>/metrics/<cell name>.metrics.jsonl.
func trainCell(c Config, t *task, cl cell, out string, progress func(string)) (*Result, error) {
	mr := &methodRun{c: c, t: t, cell: cl, lr: cl.lr, progress: progress}
	defer mr.close()
	if err := mr.open(out); err != nil {
		return nil, fmt.Errorf("%s: %w", cl.name(t.teacher), err)
	}
	res := &Result{Section: cl.section, Teacher: t.teacher, Rank: cl.rank, Variant: cl.variant.Name,
		Method: string(mr.spec.Method), Seed: cl.seed, LR: cl.lr, TrainableParams: mr.adapterParams}
	losses, err := mr.train()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cl.name(t.teacher), err)
	}
	res.FirstLoss = losses[0]
	last := losses[max(0, len(losses)-10):]
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
	cell          cell
	spec          adapter.Spec
	lr            float64
	progress      func(string)
	m             *model.Model
	shared        *lrlora.SharedPhi // nil unless φ is shared
	params        []ts.NamedTensor
	opt           *optim.AdamW
	f             *os.File
	enc           *json.Encoder
	adapterParams int64
}

// open loads the student, injects the cell's adapters (with a shared φ if the
// variant shares one, as lrtrain train does) and creates the optimizer (φ's rate
// scaled by phi.lr_scale) and the metrics file.
func (r *methodRun) open(out string) error {
	var err error
	if r.m, err = model.Load(r.t.base); err != nil {
		return err
	}
	if r.spec, err = r.c.adapterSpec(r.cell.variant, r.cell.rank); err != nil {
		return err
	}
	var opts []lrlora.Option
	if r.spec.Method == adapter.LRLoRA && r.spec.Share != adapter.ShareNone {
		if r.shared, err = lrlora.NewSharedPhi(r.spec.Phi, gotch.Float, r.m.Device()); err != nil {
			return err
		}
		opts = append(opts, lrlora.WithSharedPhi(r.shared))
	}
	if _, err := r.m.Inject(r.spec, rand.New(rand.NewPCG(r.cell.seed, 0xada)), opts...); err != nil {
		return err
	}
	r.m.Train(true)
	list := r.m.TrainableTensors()
	if r.shared != nil {
		list = append(list, r.shared.Tensors()...)
	}
	if r.adapterParams, err = param.Count(list); err != nil {
		return err
	}
	r.params = param.Trainable(list)
	if r.opt, err = optim.NewAdamW(r.params, optim.AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}); err != nil {
		return err
	}
	if scale := r.spec.Resolved().LRScale; scale != 1 {
		for _, p := range r.params {
			if lrlora.IsPhiParameter(p.Name) {
				if err := r.opt.SetLRScale(p.Name, scale); err != nil {
					return err
				}
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(out, "metrics"), 0o755); err != nil {
		return err
	}
	if r.f, err = os.Create(metricsPath(out, r.cell.name(r.t.teacher))); err != nil {
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
	if r.shared != nil {
		r.shared.Close()
	}
}

// train runs c.Steps optimizer steps on batches drawn the same way for every variant
// of a seed, evaluating five times, and returns every step's loss.
func (r *methodRun) train() ([]float64, error) {
	c := r.c
	order := rand.New(rand.NewPCG(r.cell.seed, 0xda7a)) // the same batches for every variant
	n := c.TrainSequences
	perm := order.Perm(n)
	var losses []float64
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
			r.progress(fmt.Sprintf("%s step %4d  train KL %.5f  held-out KL %.5f", r.cell.name(r.t.teacher), step+1, loss, ev))
		}
		if err := r.enc.Encode(rec); err != nil {
			return nil, err
		}
		losses = append(losses, loss)
	}
	return losses, nil
}

// step is one optimizer step on the sequences idx: forward, backward, clipping, AdamW.
func (r *methodRun) step(step int, idx []int) (float64, error) {
	loss, err := trainStep(r.m, r.t, r.c, idx)
	if err != nil {
		return 0, fmt.Errorf("step %d: %w", step+1, err)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, fmt.Errorf("step %d: loss %v", step+1, loss)
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
	if res.ValKL, err = meanKL(r.m, r.t.val, r.t.valLP, r.c.SeqLen); err != nil {
		return err
	}
	var extra []param.Tensor // a shared φ's tensors, which the adapters point at
	if r.shared != nil {
		extra = r.shared.Tensors()
	}
	if res.Modules, err = evaluate.AnalyzeAdapters(r.m, evaluate.AnalyzeOptions{Extra: extra}); err != nil {
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

// metricsPath is where a run's per-step losses go.
func metricsPath(out, name string) string {
	return filepath.Join(out, "metrics", name+".metrics.jsonl")
}
