package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// Teachers: the update added to every target module of the base model.
const (
	teacherLowRank  = "lowrank"  // B*·A* of rank teacher_rank, standard normal factors
	teacherPowerLaw = "powerlaw" // U·diag(σ)·Vᵀ, full rank, σ_i ∝ 1/i, U and V orthonormal
)

// task is the distillation problem: the base (student) model on disk, random prompts
// and the teacher's next-token log-probabilities on them.
type task struct {
	teacher                string
	base                   string
	vocab                  int
	train, eval, val       []int64    // sequences × seq_len token ids
	trainLP, evalLP, valLP *ts.Tensor // sequences × seq_len × vocab teacher log-probs, float32
	teacherSR              map[string]float64
	teacherRelNorm         float64 // mean ‖ΔW*‖_F / ‖W0‖_F (checks teacher_scale)
	baseTrainKL            float64 // KL(teacher ‖ base) before any training
	baseEvalKL             float64
	baseValKL              float64
}

func (t *task) drop() {
	for _, x := range []*ts.Tensor{t.trainLP, t.evalLP, t.valLP} {
		if x != nil {
			x.Drop()
		}
	}
}

// newTask writes the base model into dir, builds the teacher in memory (base + the
// teacher's update of relative size teacher_scale on every target module) and
// computes its log-probabilities on random prompts. The train and test prompts and
// the low-rank teacher are drawn first, as before the validation set existed, so a
// given seed gives the same problem.
func newTask(c Config, dir, teacher string) (t *task, err error) {
	t = &task{teacher: teacher, base: filepath.Join(dir, "base"), teacherSR: map[string]float64{}}
	cfg, err := hfinit.Write(t.base, hfinit.Options{Arch: c.Arch, Preset: c.Preset, Seed: c.Seed, InitStd: c.InitStd})
	if err != nil {
		return nil, err
	}
	t.vocab = cfg.VocabSize
	rng := rand.New(rand.NewPCG(c.Seed, 0x7a5c))
	t.train = randomTokens(rng, c.TrainSequences*c.SeqLen, t.vocab)
	t.eval = randomTokens(rng, c.EvalSequences*c.SeqLen, t.vocab)

	tm, err := model.Load(t.base)
	if err != nil {
		return nil, err
	}
	defer tm.Close()
	if err := t.perturb(c, tm, rng, cfg.HiddenSize); err != nil {
		return nil, err
	}
	t.val = randomTokens(rng, c.ValSequences*c.SeqLen, t.vocab)
	defer func() {
		if err != nil {
			t.drop()
		}
	}()
	tm.Train(false)
	if t.trainLP, err = logProbs(tm, t.train, c.SeqLen); err != nil {
		return nil, err
	}
	if t.evalLP, err = logProbs(tm, t.eval, c.SeqLen); err != nil {
		return nil, err
	}
	if t.valLP, err = logProbs(tm, t.val, c.SeqLen); err != nil {
		return nil, err
	}
	student, err := model.Load(t.base)
	if err != nil {
		return nil, err
	}
	defer student.Close()
	if t.baseTrainKL, err = meanKL(student, t.train, t.trainLP, c.SeqLen); err != nil {
		return nil, err
	}
	if t.baseEvalKL, err = meanKL(student, t.eval, t.evalLP, c.SeqLen); err != nil {
		return nil, err
	}
	t.baseValKL, err = meanKL(student, t.val, t.valLP, c.SeqLen)
	return t, err
}

// perturb adds the teacher's update to every target module through an injected LoRA
// adapter (so the teacher's logits come from the same forward code): B*·A* of rank
// teacher_rank with standard normal factors, or, for powerlaw, a rank-hidden adapter
// whose B·A is U·diag(σ)·Vᵀ with σ_i = 1/i over min(d_out, d_in) directions. B is
// then rescaled so that ‖ΔW*‖_F = teacher_scale·‖W0‖_F in every module.
func (t *task) perturb(c Config, m *model.Model, rng *rand.Rand, hidden int) error {
	spec, err := c.adapterSpec(Variant{Method: string(adapter.LoRA)}, c.TeacherRank)
	if err != nil {
		return err
	}
	if t.teacher == teacherPowerLaw {
		spec.R = hidden
	}
	spec.Alpha = float64(spec.R) // s = 1
	ads, err := m.Inject(spec, rng)
	if err != nil {
		return err
	}
	var rel float64
	for _, ad := range ads {
		a, b := ad.Tensors()[0].Tensor, ad.Tensors()[1].Tensor
		if t.teacher == teacherPowerLaw {
			err = powerLawFactors(a, b, rng)
		} else if err = tensorkit.FillNormal(a, rng, 1); err == nil {
			err = tensorkit.FillNormal(b, rng, 1)
		}
		if err != nil {
			return err
		}
		dw, err := ad.DeltaWeight()
		if err != nil {
			return err
		}
		dn, wn := frobenius(dw), frobenius(ad.Weight())
		dw.Drop()
		if err := scaleInPlace(b, c.TeacherScale*wn/dn); err != nil {
			return err
		}
		if dw, err = ad.DeltaWeight(); err != nil {
			return err
		}
		rel += frobenius(dw) / wn
		if t.teacherSR[ad.Name()], err = lrlora.StableRank(dw); err != nil {
			return err
		}
		dw.Drop()
	}
	t.teacherRelNorm = rel / float64(len(ads))
	return nil
}

func randomTokens(rng *rand.Rand, n, vocab int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(rng.IntN(vocab))
	}
	return out
}

func scaleInPlace(x *ts.Tensor, c float64) error {
	return tensorkit.NoGrad(func() error {
		return tensorkit.Done(x.MulScalarOut(x, ts.FloatScalar(c), false))
	})
}

func frobenius(x *ts.Tensor) float64 {
	vals, err := tensorkit.Float32s(x)
	if err != nil {
		return math.NaN()
	}
	s := 0.0
	for _, v := range vals {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// logProbs runs m on the sequences (32 at a time, no autograd) and returns the
// float32 log-softmax of its logits, sequences × seqLen × vocab.
func logProbs(m *model.Model, tokens []int64, seqLen int) (*ts.Tensor, error) {
	var parts []*ts.Tensor
	defer func() {
		for _, p := range parts {
			p.Drop()
		}
	}()
	err := forwardBatches(m, tokens, seqLen, func(_, _ int, logits *ts.Tensor) error {
		lp, err := logits.LogSoftmax(-1, gotch.Float, false)
		if err != nil {
			return err
		}
		parts = append(parts, lp)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("teacher log-probs: %w", err)
	}
	return ts.Cat(parts, 0)
}
