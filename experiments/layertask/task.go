// Package layertask is a small, self-contained LR-LoRA experiment on one linear
// layer: a frozen W0 must be adapted to a teacher W0 + Δ* whose update Δ* has rank
// above the adapter's r. It is what `lrtrain demo` runs, and it compares the adapter
// methods (lora, sinelora, lrlora) at the same r and seed.
package layertask

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/optim"
)

// Config describes the task and the training run.
type Config struct {
	Dim         int     // d_in = d_out
	Rank        int     // adapter rank r
	TeacherRank int     // rank of the teacher update Δ* (> Rank for the interesting case)
	Batch       int     // samples per step
	Steps       int     // optimizer steps
	LR          float64 // peak learning rate (linear warmup over 10% of steps, then linear decay)
	Seed        uint64
	EvalSamples int
}

// DefaultConfig runs in a few seconds on 2 cores.
func DefaultConfig() Config {
	return Config{Dim: 64, Rank: 2, TeacherRank: 8, Batch: 128, Steps: 300, LR: 1e-2, Seed: 1, EvalSamples: 1024}
}

// Result is what one method achieved.
type Result struct {
	Method          string
	TrainableParams int64
	Losses          []float64 // training loss per step
	EvalLoss        float64   // held-out mean squared error
	StableRankDelta float64   // sr(ΔW) of the learned update
	StableRankBA    float64   // sr(B·A): the LoRA-equivalent update's complexity
	TeacherSR       float64   // sr(Δ*)
}

// problem holds the frozen layer, the teacher and the held-out set.
type problem struct {
	w0, teacher, delta *ts.Tensor
	evalX, evalY       *ts.Tensor
}

func (p *problem) drop() {
	for _, t := range []*ts.Tensor{p.w0, p.teacher, p.delta, p.evalX, p.evalY} {
		if t != nil {
			t.Drop()
		}
	}
}

// gaussian returns an n×m float32 tensor of N(0, std²) draws from rng.
func gaussian(rng *rand.Rand, n, m int, std float64) (*ts.Tensor, error) {
	data := make([]float32, n*m)
	for i := range data {
		data[i] = float32(rng.NormFloat64() * std)
	}
	return ts.NewTensorFromData(data, []int64{int64(n), int64(m)})
}

func newProblem(cfg Config, rng *rand.Rand) (*problem, error) {
	p := &problem{}
	var err error
	d := cfg.Dim
	if p.w0, err = gaussian(rng, d, d, 1/math.Sqrt(float64(d))); err != nil {
		return nil, err
	}
	// Δ* = U·Vᵀ of rank TeacherRank, about half of W0's size.
	u, err := gaussian(rng, d, cfg.TeacherRank, 1/math.Sqrt(float64(cfg.TeacherRank)))
	if err != nil {
		p.drop()
		return nil, err
	}
	defer u.Drop()
	v, err := gaussian(rng, cfg.TeacherRank, d, 0.5/math.Sqrt(float64(d)))
	if err != nil {
		p.drop()
		return nil, err
	}
	defer v.Drop()
	if p.delta, err = u.Mm(v, false); err != nil {
		p.drop()
		return nil, err
	}
	if p.teacher, err = p.w0.Add(p.delta, false); err != nil {
		p.drop()
		return nil, err
	}
	if p.evalX, err = gaussian(rng, cfg.EvalSamples, d, 1); err != nil {
		p.drop()
		return nil, err
	}
	tt, err := p.teacher.T(false)
	if err != nil {
		p.drop()
		return nil, err
	}
	defer tt.Drop()
	if p.evalY, err = p.evalX.Matmul(tt, false); err != nil {
		p.drop()
		return nil, err
	}
	return p, nil
}

// LearningRate is the rate of step (0-based) of total: linear warmup over the
// first ⌈10%⌉ of steps, then linear decay (the paper's schedule), with the step
// itself counted (optim.StepIndex, as experiments/rank).
func LearningRate(peak float64, step, total int) float64 {
	return optim.Schedule{
		Kind:     optim.Linear,
		Peak:     peak,
		Warmup:   optim.WarmupSteps(0.1, total),
		Total:    total,
		Counting: optim.StepIndex,
	}.At(step)
}

// Run trains one adapter of the given method on the task and returns its result.
// Progress is reported through onStep (may be nil) after every step.
func Run(cfg Config, method adapter.Method, onStep func(step int, loss float64)) (Result, error) {
	runtime.LockOSThread() // libtorch's grad mode is per OS thread
	defer runtime.UnlockOSThread()
	res := Result{Method: string(method)}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	p, err := newProblem(cfg, rng)
	if err != nil {
		return res, fmt.Errorf("layertask: build problem: %w", err)
	}
	defer p.drop()
	spec := adapter.Default()
	spec.Method, spec.R = method, cfg.Rank
	ad, err := lrlora.New("layer", p.w0, nil, spec, rand.New(rand.NewPCG(cfg.Seed, 0xada)))
	if err != nil {
		return res, err
	}
	defer ad.Close()
	if res.TrainableParams, err = ad.NumParameters(); err != nil {
		return res, err
	}
	opt, err := optim.NewAdamW(ad.TrainableParameters(), optim.AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		return res, err
	}
	defer opt.Close()
	dataRNG := rand.New(rand.NewPCG(cfg.Seed, 0xda7a))
	for step := 0; step < cfg.Steps; step++ {
		loss, err := trainStep(cfg, p, ad, opt, dataRNG, LearningRate(cfg.LR, step, cfg.Steps))
		if err != nil {
			return res, fmt.Errorf("layertask: %s step %d: %w", method, step, err)
		}
		res.Losses = append(res.Losses, loss)
		if onStep != nil {
			onStep(step, loss)
		}
	}
	return res, finish(p, ad, &res)
}

func trainStep(cfg Config, p *problem, ad *lrlora.Adapter, opt *optim.AdamW, rng *rand.Rand, lr float64) (float64, error) {
	x, err := gaussian(rng, cfg.Batch, cfg.Dim, 1)
	if err != nil {
		return 0, err
	}
	defer x.Drop()
	tt, err := p.teacher.T(false)
	if err != nil {
		return 0, err
	}
	defer tt.Drop()
	y, err := x.Matmul(tt, false)
	if err != nil {
		return 0, err
	}
	defer y.Drop()
	yhat, err := ad.Forward(x)
	if err != nil {
		return 0, err
	}
	defer yhat.Drop()
	loss, err := yhat.MseLoss(y, 1 /* mean */, false)
	if err != nil {
		return 0, err
	}
	defer loss.Drop()
	if err := loss.Backward(); err != nil {
		return 0, err
	}
	v, err := tensorkit.Scalar(loss)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return v, fmt.Errorf("non-finite loss %v", v)
	}
	if _, err := optim.ClipGradNorm(ad.TrainableParameters(), 1.0); err != nil {
		return v, err
	}
	if err := opt.Step(lr); err != nil {
		return v, err
	}
	return v, opt.ZeroGrad()
}

// finish evaluates on the held-out set and measures the stable ranks, without
// autograd.
func finish(p *problem, ad *lrlora.Adapter, res *Result) error {
	ad.Train(false)
	return tensorkit.NoGrad(func() error { return measure(p, ad, res) })
}

// measure is finish's work.
func measure(p *problem, ad *lrlora.Adapter, res *Result) error {
	yhat, err := ad.Forward(p.evalX)
	if err != nil {
		return err
	}
	defer yhat.Drop()
	loss, err := yhat.MseLoss(p.evalY, 1, false)
	if err != nil {
		return err
	}
	defer loss.Drop()
	if res.EvalLoss, err = tensorkit.Scalar(loss); err != nil {
		return err
	}
	dw, err := ad.DeltaWeight()
	if err != nil {
		return err
	}
	defer dw.Drop()
	if res.StableRankDelta, err = lrlora.StableRank(dw); err != nil {
		return err
	}
	ba, err := loraEquivalent(ad)
	if err != nil {
		return err
	}
	defer ba.Drop()
	if res.StableRankBA, err = lrlora.StableRank(ba); err != nil {
		return err
	}
	res.TeacherSR, err = lrlora.StableRank(p.delta)
	return err
}

// loraEquivalent returns B·A of the adapter.
func loraEquivalent(ad *lrlora.Adapter) (*ts.Tensor, error) {
	var a, b *ts.Tensor
	for _, nt := range ad.Tensors() {
		switch nt.Name {
		case ad.Name() + ".lora_A":
			a = nt.Tensor
		case ad.Name() + ".lora_B":
			b = nt.Tensor
		}
	}
	if a == nil || b == nil {
		return nil, fmt.Errorf("layertask: adapter %q lacks lora_A/lora_B", ad.Name())
	}
	return b.Mm(a, false)
}
