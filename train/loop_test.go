package train

import (
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/optim"
)

// normOptions is one float64 optimizer step over the first four examples in file order.
func normOptions(t *testing.T, micro, accum int) Options {
	o := tinyOptions(t, t.TempDir())
	o.Model.DType = "float64"
	o.Data.Shuffle = false
	o.Data.MaxLen = 256
	o.Train.MaxSteps = 1
	o.Train.MicroBatchSize, o.Train.GradAccumSteps = micro, accum
	o.Train.WarmupRatio, o.Train.GradClip = 0, 0
	o.Checkpoint.Every = 0
	return o
}

// The loss of a step is the mean over the target tokens of the whole global batch, and
// its gradient the gradient of that mean, however the batch is cut into micro-batches:
// the loop's loss and gradient norm match a single forward pass over the four examples
// (independent of the loop: model, loss and autograd directly), in float64.
func TestStepLossIsTheMeanOverTheGlobalBatchTargets(t *testing.T) {
	want, wantNorm, perExampleMean := referenceStep(t, normOptions(t, 4, 1))
	if math.Abs(perExampleMean-want) < 1e-4 {
		t.Fatalf("test does not discriminate: mean of per-example means %v ≈ token mean %v", perExampleMean, want)
	}
	for _, c := range []struct{ micro, accum int }{{4, 1}, {2, 2}, {1, 4}} {
		o := normOptions(t, c.micro, c.accum)
		if _, err := Run(context.Background(), o, Env{Console: io.Discard}); err != nil {
			t.Fatal(err)
		}
		steps, _ := metricsOf(t, o.Output.Dir)
		loss, norm := steps[0]["loss"].(float64), steps[0]["grad_norm"].(float64)
		if math.Abs(loss-want) > 1e-12*want || math.Abs(norm-wantNorm) > 1e-9*wantNorm {
			t.Errorf("micro %d × accum %d: loss %.15g, grad norm %.15g; reference %.15g, %.15g",
				c.micro, c.accum, loss, norm, want, wantNorm)
		}
	}
}

// referenceStep computes the first step's loss (token mean), gradient norm and the mean
// of per-example mean losses with the model package directly.
func referenceStep(t *testing.T, o Options) (loss, gradNorm, perExampleMean float64) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	o, err := o.resolve()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := loadTokenizer(o.Model.Path)
	if err != nil {
		t.Fatal(err)
	}
	exs, err := buildData(o, tok)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := loadModel(context.Background(), o, gotch.CPU, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := injectAdapters(m, o, rand.New(rand.NewPCG(o.Train.Seed, adapterStream))); err != nil {
		t.Fatal(err)
	}
	m.Train(true)
	collator, _ := data.NewCollator(tok, 0)
	forward := func(exs []data.Example) (*ts.Tensor, int64) {
		b, err := collator.Collate(exs)
		if err != nil {
			t.Fatal(err)
		}
		bt, err := toTensors(b, false, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		defer bt.drop()
		logits, err := m.Forward(bt.in)
		if err != nil {
			t.Fatal(err)
		}
		defer logits.MustDrop()
		sum, n, err := model.CausalLMLoss(logits, bt.labels)
		if err != nil {
			t.Fatal(err)
		}
		return sum, n
	}
	for i := range 4 {
		sum, n := forward(exs.train[i : i+1])
		perExampleMean += sum.Float64Values()[0] / float64(n) / 4
		sum.MustDrop()
	}
	sum, n := forward(exs.train[:4])
	defer sum.MustDrop()
	mean := sum.MustDivScalar(ts.FloatScalar(float64(n)), false)
	defer mean.MustDrop()
	mean.MustBackward()
	norm, err := optim.ClipGradNorm(optimParams(m.TrainableTensors()), math.Inf(1))
	if err != nil {
		t.Fatal(err)
	}
	return mean.Float64Values()[0], norm, perExampleMean
}

// A non-finite loss, gradient norm or parameter stops the run with an error naming the
// step and the last good checkpoint; the checkpoints written before stay loadable, and
// no state of the bad step is saved. A learning rate of 1e30 sends LoRA's B to ±1e30 in
// the first step and the loss to NaN in the second; with 1e38 the first update itself
// overflows float32 (lr/(1−β1) > 3.4e38), which the checkpoint of step 1 catches.
func TestNonFiniteValuesStopWithoutSaving(t *testing.T) {
	for _, lr := range []float64{1e30, 1e38} {
		o := tinyOptions(t, t.TempDir())
		o.Adapter.Method = "lora"
		o.Train.LR, o.Train.WarmupRatio, o.Train.GradClip = lr, 0, 0
		o.Train.MaxSteps, o.Checkpoint.Every, o.Checkpoint.KeepLast = 6, 1, 0
		res, err := Run(context.Background(), o, Env{Console: io.Discard})
		if !errors.Is(err, ErrNonFinite) {
			t.Fatalf("lr %g: err = %v, want ErrNonFinite", lr, err)
		}
		t.Logf("lr %g: %v", lr, err)
		good := res.Step // the steps before the bad one were saved
		if lr == 1e38 {
			good = 0
		}
		if !strings.Contains(err.Error(), "step "+strconv.FormatInt(good+1, 10)) || !strings.Contains(err.Error(), "last good checkpoint") {
			t.Errorf("lr %g: error %q does not name step %d and the last good checkpoint", lr, err, good+1)
		}
		c, _, err := checkpoint.LatestValid(filepath.Join(o.Output.Dir, "checkpoints"))
		if good == 0 {
			if err == nil {
				t.Errorf("lr %g: a checkpoint of step %d was saved", lr, c.Step)
			}
			continue
		}
		if err != nil || c.Step != good {
			t.Fatalf("lr %g: latest valid checkpoint %v, %v; want step %d", lr, c, err, good)
		}
		s, err := OpenCheckpoint(c.Dir)
		if err == nil {
			_, err = s.readTensors(AdapterFile)
		}
		if err != nil {
			t.Errorf("lr %g: last good checkpoint: %v", lr, err)
		}
	}
}
