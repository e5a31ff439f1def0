package main

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// stepZero is what one variant's student gives on the first batch, with every B set to
// the same non-zero values (so that ΔW ≠ 0) and a at its initial value: the loss, each
// module's ΔW, and the gradients of each A and B.
type stepZero struct {
	loss      float64
	dw, grads [][]float32
}

func firstStep(t *testing.T, c Config, tk *task, v Variant, out string, training bool) stepZero {
	t.Helper()
	mr := &methodRun{c: c, t: tk, cell: cell{section: sectionMain, variant: v, rank: 2, seed: 1, lr: 0.005},
		lr: 0.005, progress: func(string) {}}
	defer mr.close()
	if err := mr.open(out); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for _, ad := range mr.m.Adapters() {
		if err := tensorkit.FillNormal(ad.Tensors()[1].Tensor, rng, 0.05); err != nil {
			t.Fatal(err)
		}
	}
	mr.m.Train(training)
	var s stepZero
	var err error
	if s.loss, err = trainStep(mr.m, tk, c, []int{0, 3, 5, 7}); err != nil {
		t.Fatal(err)
	}
	for _, ad := range mr.m.Adapters() {
		err := tensorkit.NoGrad(func() error {
			dw, err := ad.DeltaWeight()
			if err != nil {
				return err
			}
			defer dw.Drop()
			vals, err := tensorkit.Float32s(dw)
			s.dw = append(s.dw, vals)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ad.Tensors()[:2] { // lora_A, lora_B
			g := p.Tensor.MustGrad(false)
			vals, err := tensorkit.Float32s(g)
			g.Drop()
			if err != nil {
				t.Fatal(err)
			}
			s.grads = append(s.grads, vals)
		}
	}
	return s
}

// The residual variant with a = 0 is LoRA through the whole program: on the same
// student, batch and adapter values (B ≠ 0), every ΔW is LoRA's bit for bit (φ(x) =
// x + Σ 0·(…) adds exact zeros); with both merged (eval mode, y = x·(W0 + ΔW)ᵀ) so are
// the loss and the gradients of every A and B. In training mode LoRA runs unmerged,
// x·W0ᵀ + s·(x·Aᵀ)·Bᵀ, as PEFT does: the same sums in another order, so its loss
// equals the residual variant's to float32 rounding (64 ulps relative; 1 measured).
func TestResidualIsLoRAAtZeroAmplitude(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c, err := readConfig(writeConfig(t, testConfig))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	tk, err := newTask(c, out, teacherPowerLaw)
	if err != nil {
		t.Fatal(err)
	}
	defer tk.drop()
	vs := c.variants()
	if len(vs) != 2 || vs[0].Name != "lora" || vs[1].Name != "lrlora-residual" {
		t.Fatalf("variants %+v", vs)
	}
	lora, res := firstStep(t, c, tk, vs[0], out, false), firstStep(t, c, tk, vs[1], out, false)
	if lora.loss != res.loss || lora.loss == tk.baseTrainKL {
		t.Errorf("loss: LoRA %v, residual %v (unadapted %v)", lora.loss, res.loss, tk.baseTrainKL)
	}
	for i := range lora.dw {
		if !slices.Equal(lora.dw[i], res.dw[i]) || !slices.ContainsFunc(lora.dw[i], func(x float32) bool { return x != 0 }) {
			t.Errorf("module %d: ΔW differs or is zero", i)
		}
	}
	for i := range lora.grads {
		if !slices.Equal(lora.grads[i], res.grads[i]) {
			t.Errorf("gradient %d (A, B of each module in turn) differs", i)
		}
	}
	lt, rt := firstStep(t, c, tk, vs[0], out, true), firstStep(t, c, tk, vs[1], out, true)
	if math.Abs(lt.loss-rt.loss) > 64*0x1p-23*lt.loss || rt.loss != res.loss {
		t.Errorf("training mode: loss LoRA %v, residual %v (merged %v)", lt.loss, rt.loss, res.loss)
	}
}

// The shipped configurations parse, and reproduce.yaml is the grid its header states:
// 330 trained runs (the ablations' baseline is the main grid's lrlora at r = 2 on the
// power-law teacher, trained once).
func TestShippedConfigs(t *testing.T) {
	if _, err := readConfig("config.yaml"); err != nil {
		t.Fatal(err)
	}
	c, err := readConfig("reproduce.yaml")
	if err != nil {
		t.Fatal(err)
	}
	trained, listed := map[string]bool{}, 0
	for _, teacher := range c.allTeachers() {
		for _, cl := range c.cells(teacher) {
			k, err := c.key(cl)
			if err != nil {
				t.Fatal(err)
			}
			trained[teacher+"|"+k] = true
			listed++
		}
	}
	if len(trained) != 495 || listed != 504 {
		t.Errorf("reproduce.yaml: %d runs trained of %d listed, want 495 of 504", len(trained), listed)
	}
	if _, err := readConfig("lr-check.yaml"); err != nil {
		t.Fatal(err)
	}
}
