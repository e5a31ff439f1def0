package model_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// The golden files are written by testdata/golden.py, an independent float64 PyTorch
// implementation of the architectures following transformers' conventions, from the
// checkpoints and inputs that testdata/gen writes (see regenerate).
const goldenVersion = "1"

var goldenCases = []string{"llama", "qwen2", "mistral", "phi3", "roberta", "bert"}

// Tolerances, as max |got − want| / (1 + |want|) against the float64 reference:
//   - float64: the same maths in the same precision; only the order of summation in
//     matmul and softmax differs, which moves results by a few ulps (≈1e-15). 1e-10
//     leaves room for that and still catches any real difference (a wrong mask or
//     rotary frequency changes logits by more than 1e-2).
//   - float32: rounding to float32 (ε ≈ 6e-8) of the activations, of the rotary
//     tables (angles up to 7 rad) and through two layers of dot products, norms and
//     softmax; the largest error seen is 3.9e-6 (mistral). 5e-5 is ~13× that and still
//     far below any real difference.
var precisions = []struct {
	name string
	dt   gotch.DType
	tol  float64
}{{"float64", gotch.Double, 1e-10}, {"float32", gotch.Float, 5e-5}}

func openGolden(t *testing.T, dir string) (golden, inputs *safetensors.File) {
	t.Helper()
	g, err := safetensors.Open(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		t.Fatalf("%v; %s", err, regenerate)
	}
	t.Cleanup(func() { g.Close() })
	meta := g.Metadata()
	if meta["format"] != "lrtrain-model-golden" || meta["version"] != goldenVersion {
		t.Fatalf("golden file %s has format %q version %q, want lrtrain-model-golden %s; %s",
			g.Path(), meta["format"], meta["version"], goldenVersion, regenerate)
	}
	in, err := safetensors.Open(filepath.Join(dir, "inputs.safetensors"))
	if err != nil {
		t.Fatalf("%v; %s", err, regenerate)
	}
	t.Cleanup(func() { in.Close() })
	return g, in
}

func goldenInputs(t *testing.T, in *safetensors.File) model.Inputs {
	x := model.Inputs{InputIDs: int64Input(t, in, "input_ids"), AttentionMask: int64Input(t, in, "attention_mask")}
	if _, ok := in.Info("token_type_ids"); ok {
		x.TokenTypeIDs = int64Input(t, in, "token_type_ids")
	}
	return x
}

// forwardGolden runs m on the case's inputs and checks the logits and the summed loss
// against the golden file's <prefix>logits and <prefix>loss_sum (prefix "" or
// "adapted."); it returns the loss, which the caller drops, and its target count.
func forwardGolden(t *testing.T, m *model.Model, g, in *safetensors.File, prefix string, tol float64) (*ts.Tensor, int64) {
	t.Helper()
	logits, err := m.Forward(goldenInputs(t, in))
	if err != nil {
		t.Fatal(err)
	}
	defer logits.Drop()
	want, _ := g.Float64s(prefix + "logits")
	checkClose(t, prefix+"logits", tensortest.Values(t, logits), want, tol)
	loss, count := goldenLoss(t, m, in, logits)
	wantLoss, _ := g.Float64s(prefix + "loss_sum")
	checkClose(t, prefix+"loss_sum", tensortest.Values(t, loss), wantLoss, tol)
	return loss, count
}

// goldenLoss computes the case's loss the way the reference does.
func goldenLoss(t *testing.T, m *model.Model, in *safetensors.File, logits *ts.Tensor) (*ts.Tensor, int64) {
	t.Helper()
	var (
		loss  *ts.Tensor
		count int64
		err   error
	)
	switch {
	case m.Architecture().Task == model.CausalLM:
		loss, count, err = model.CausalLMLoss(logits, int64Input(t, in, "labels"))
	case m.Config().Regression():
		loss, count, err = model.RegressionLoss(logits, tensorOf(t, in, "scores", m.DType()), nil)
	default:
		loss, count, err = model.ClassificationLoss(logits, int64Input(t, in, "class_labels"))
	}
	if err != nil {
		t.Fatal(err)
	}
	return loss, count
}

func TestGoldenLogitsAndLoss(t *testing.T) {
	for _, name := range goldenCases {
		for _, p := range precisions {
			t.Run(name+"/"+p.name, func(t *testing.T) {
				dir := filepath.Join("testdata", "golden", name)
				g, in := openGolden(t, dir)
				m := mustLoad(t, dir, model.WithDType(p.dt), model.WithEagerAttention())
				loss, count := forwardGolden(t, m, g, in, "", p.tol)
				defer loss.Drop()
				wantCount, _ := g.Int64s("target_count")
				if count != wantCount[0] {
					t.Errorf("target count %d, want %d", count, wantCount[0])
				}
			})
		}
	}
}

// TestGoldenAdapterGradients runs the llama case with LR-LoRA adapters on every linear
// layer (B, a and β set away from their initial values) and compares the loss and the
// gradient of every adapter tensor with the reference's autograd.
func TestGoldenAdapterGradients(t *testing.T) {
	for _, p := range precisions {
		t.Run(p.name, func(t *testing.T) {
			lockThread(t) // a subtest runs on a goroutine of its own
			dir := filepath.Join("testdata", "golden", "llama")
			g, in := openGolden(t, dir)
			values, err := safetensors.Open(filepath.Join(dir, "adapters.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer values.Close()
			m := mustLoad(t, dir, model.WithDType(p.dt), model.WithEagerAttention())
			ads, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 2), rand.New(rand.NewPCG(1, 2)))
			if err != nil {
				t.Fatal(err)
			}
			if len(ads) != 14 {
				t.Fatalf("%d adapters, want 14 (7 per layer)", len(ads))
			}
			set := 0
			for _, nt := range m.TrainableTensors() {
				src := tensorOf(t, values, nt.Name, nt.Tensor.DType())
				ts.NoGrad(func() { nt.Tensor.Copy_(src) })
				src.Drop()
				set++
			}
			if set != values.Len() {
				t.Fatalf("set %d adapter tensors, the file has %d", set, values.Len())
			}
			loss, count := forwardGolden(t, m, g, in, "adapted.", p.tol)
			defer loss.Drop()
			mean := loss.MustDivScalar(ts.FloatScalar(float64(count)), false)
			defer mean.Drop()
			if err := mean.Backward(); err != nil {
				t.Fatal(err)
			}
			grads := 0
			for _, nt := range m.TrainableTensors() {
				if !nt.Trainable {
					continue
				}
				grad := nt.Tensor.MustGrad(false)
				wantGrad, err := g.Float64s("grad." + nt.Name)
				if err != nil {
					t.Fatal(err)
				}
				// Gradients go through one more chain of roundings than the
				// forward pass; float32 gets twice the forward tolerance.
				checkClose(t, "grad "+nt.Name, tensortest.Values(t, grad), wantGrad, 2*p.tol)
				grad.Drop()
				grads++
			}
			if grads != 14*4 {
				t.Errorf("compared %d gradients, want %d", grads, 14*4)
			}
		})
	}
}
