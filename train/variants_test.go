package train

import (
	"context"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Activation checkpointing recomputes blocks in backward; the model's gradients are
// bit-identical to a pass without it, so the whole run is too (here with packing).
func TestActivationCheckpointingTrainsIdentically(t *testing.T) {
	run := func(checkpointing bool) []float64 {
		return lossesAndNorms(t, func(o *Options) {
			o.Model.ActivationCheckpointing = checkpointing
			o.Data.Packing, o.Data.MaxLen = true, 192
		})
	}
	if plain, ckpt := run(false), run(true); !slices.Equal(plain, ckpt) {
		t.Errorf("losses and gradient norms without checkpointing %v, with %v", plain, ckpt)
	}
}

// model.recompute_delta changes what LR-LoRA keeps for backward, not the arithmetic:
// the outputs are the same calls, and the gradients differ at most by the order of a
// GEMM's sums (lrlora's TestRecomputeDeltaMatchesDefault). From the identity start
// (the a = 0 start leaves its saddle through rounding, so rounding differences grow
// there) three steps stay within 1e-5 relative: swapping OpenBLAS kernels, which
// reorders every sum, moves this kind of run by ~1e-7 over twenty steps. With φ
// shared by all layers too (every layer's node adds into the one amplitude's gradient).
// Both form ΔW per micro-batch (model.delta_per_step off; a recomputing layer always
// does): holding it for the step sums the 2 micro-batches' gradients before φ's backward
// instead of after, and under AdamW, which scales a gradient near 0 made of rounding up
// to a full step, that order alone moves this float32 run by ~1e-4 in three steps.
func TestRecomputeDeltaTrainsAlike(t *testing.T) {
	for _, share := range []adapter.Sharing{adapter.ShareNone, adapter.ShareAll} {
		t.Run(string(share), func(t *testing.T) { recomputeDeltaTrainsAlike(t, share) })
	}
}

func recomputeDeltaTrainsAlike(t *testing.T, share adapter.Sharing) {
	run := func(recompute bool) []float64 {
		return lossesAndNorms(t, func(o *Options) {
			o.Model.RecomputeDelta = recompute
			o.Model.DeltaPerStep = false
			o.Adapter.Phi.Init = adapter.InitIdentity
			o.Adapter.Phi.Share = share
		})
	}
	plain, lean := run(false), run(true)
	if len(plain) != 6 || len(lean) != 6 {
		t.Fatalf("metrics: %v and %v, want 3 steps of loss and grad_norm each", plain, lean)
	}
	for i := range plain {
		if d := math.Abs(lean[i]-plain[i]) / math.Abs(plain[i]); d > 1e-5 {
			t.Errorf("value %d (loss, grad_norm per step): %v with recompute_delta, %v without (relative %.3g)", i, lean[i], plain[i], d)
		}
	}
}

// lossesAndNorms trains the tiny model for 3 steps with tinyOptions changed by edit and
// returns each step's loss and gradient norm, in step order.
func lossesAndNorms(t *testing.T, edit func(*Options)) []float64 {
	t.Helper()
	o := tinyOptions(t, t.TempDir())
	edit(&o)
	o.Train.MaxSteps = 3
	if _, err := Run(context.Background(), o, Env{Console: io.Discard}); err != nil {
		t.Fatal(err)
	}
	steps, _ := metricsOf(t, o.Output.Dir)
	var out []float64
	for _, s := range steps {
		out = append(out, s["loss"].(float64), s["grad_norm"].(float64))
	}
	return out
}

// bfloat16 compute trains with float32 master adapters, which the checkpoint holds.
func TestBFloat16ComputeKeepsFloat32Adapters(t *testing.T) {
	o := tinyOptions(t, t.TempDir())
	o.Model.DType = "bfloat16"
	o.Train.MaxSteps = 2
	res, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Loss-math.Log(512)) > 1 {
		t.Errorf("bf16 loss %v, want about ln 512 for a random tiny model", res.Loss)
	}
	f, err := safetensors.Open(filepath.Join(res.Checkpoint, AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range f.Names() {
		if info, _ := f.Info(n); info.DType != safetensors.F32 {
			t.Errorf("%s is %s, want F32 masters", n, info.DType)
		}
	}
}

// A RoBERTa classifier trains its adapters and its head: the loss is normalised by
// examples, the head is saved with the adapters, evaluation reports no perplexity, and
// LoadAdapters restores the head too.
func TestClassifierTrainsAdaptersAndHead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "roberta")
	tinymodel.WriteTo(t, dir, hfinit.Options{Arch: "roberta", Preset: "tiny", Seed: 1})
	o := tinyOptions(t, t.TempDir())
	o.Model.Path = dir
	o.Adapter.TargetModules = adapter.Targets{Names: []string{"query", "value"}}
	o.Data.Format = "classification_jsonl"
	o.Data.Train = []string{testdata("sentiment_tiny_train.jsonl")}
	o.Data.Eval = []string{testdata("sentiment_tiny_eval.jsonl")}
	o.Data.Labels = []string{"negative", "positive"}
	o.Train.MaxSteps, o.Train.EvalEvery = 3, 3
	res, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	steps, evals := metricsOf(t, o.Output.Dir)
	if steps[0]["targets"].(float64) != 4 || len(evals) != 1 || evals[0]["eval_targets"].(float64) != 40 {
		t.Errorf("step %v, evals %v: want 4 examples per step and 40 evaluated", steps[0], evals)
	}
	if _, ok := evals[0]["eval_ppl"]; ok {
		t.Error("a classifier's evaluation reports a perplexity")
	}
	names := tensorNames(t, filepath.Join(res.Checkpoint, AdapterFile))
	heads := 0
	for _, n := range names {
		if strings.HasPrefix(n, "classifier.") {
			heads++
		}
	}
	if heads != 4 { // dense.weight, dense.bias, out_proj.weight, out_proj.bias
		t.Errorf("%d head tensors in %v", heads, names)
	}
	m, err := model.Load(dir, model.WithNumLabels(2))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := LoadAdapters(res.Checkpoint, m); err != nil {
		t.Fatal(err)
	}
}

// With φ shared across layers the shared tensors are part of the trainable list: they
// are trained, saved and loaded like the adapters' own.
func TestSharedPhiIsSavedAndLoaded(t *testing.T) {
	o := tinyOptions(t, t.TempDir())
	o.Adapter.Share = "all"
	o.Train.MaxSteps = 2
	res, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	names := tensorNames(t, filepath.Join(res.Checkpoint, AdapterFile))
	for _, want := range []string{"phi_shared.amplitude", "phi_shared.bandwidth_raw", "phi_shared.grid"} {
		if !slices.Contains(names, want) {
			t.Errorf("%s not saved", want)
		}
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, ".phi.amplitude") }) {
		t.Error("per-adapter amplitudes saved although φ is shared")
	}
	if !slices.Contains(tensorNames(t, filepath.Join(res.Checkpoint, OptimizerFile)), "phi_shared.amplitude.exp_avg") {
		t.Error("the shared amplitude has no optimizer state")
	}
	m, err := model.Load(o.Model.Path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := OpenAdapters(res.Checkpoint, m)
	m.Close() // the model first, then the shared tensors its adapters used
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
}

// epochs: 2 on 40 examples in global batches of 16 is 2 × ⌈40/16⌉ = 6 steps; the last
// batch of each epoch is padded with flagged examples that add no targets.
func TestEpochsDecideTheStepCount(t *testing.T) {
	o := tinyOptions(t, t.TempDir())
	o.Data.Train = []string{testdata("alpaca_tiny_eval.json")}
	o.Data.MaxLen = 32
	o.Train.MaxSteps, o.Train.Epochs = 0, 2
	o.Train.MicroBatchSize, o.Train.GradAccumSteps = 8, 2
	res, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 6 || res.Reason != "epochs" {
		t.Fatalf("result %+v, want 6 steps ending on epochs", res)
	}
	steps, _ := metricsOf(t, o.Output.Dir)
	var epochs []float64
	for _, s := range steps {
		epochs = append(epochs, s["epoch"].(float64))
	}
	if !slices.Equal(epochs, []float64{0, 0, 0, 1, 1, 1}) {
		t.Errorf("epochs of the steps %v", epochs)
	}
}
