package shard_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/shard"
)

func TestMain(m *testing.M) {
	childproc.Main(map[string]func() int{
		"whole":      func() int { return runChild("whole") },
		"mem":        func() int { return runChild("mem") },
		"workload":   func() int { return runChild("workload") },
		"abort":      func() int { return runChild("abort") },
		"rows":       func() int { return runChild("rows") },
		"rows-whole": rowsWholeChild,
	})
	os.Exit(m.Run())
}

// writeModel writes a random preset model (seed 1, norms and biases perturbed) into
// a temporary directory.
func writeModel(t *testing.T, arch, preset, dtype string) string {
	t.Helper()
	return tinymodel.Write(t, hfinit.Options{Arch: arch, Preset: preset, Seed: 1, DType: dtype, Perturb: true})
}

// workload runs what the sharded and the unsharded model must agree on, bit for bit,
// and returns it as one vector: the logits of an evaluation Forward (grad mode off),
// then, after adapters are injected (LoRA with B drawn non-zero, so that A, B and the
// blocks below all get gradient), the logits, loss and every trainable gradient of a
// checkpointed training pass. atLoss, if not nil, is called between that pass's Begin
// and its loss (the head held, its backward still to come). It locks the calling
// goroutine to its OS thread.
func workload(m *model.Model, batch, seq int, atLoss func()) ([]float32, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	vocab := int64(m.Config().VocabSize)
	ids := make([]int64, batch*seq)
	for i := range ids {
		ids[i] = int64(i*7919+13) % vocab
	}
	in, err := model.Int64Tensor(ids, int64(batch), int64(seq))
	if err != nil {
		return nil, err
	}
	defer in.Drop()
	out, err := appendEvalLogits(nil, m, in)
	if err != nil {
		return nil, err
	}

	if _, err := injectLoRA(m); err != nil {
		return nil, err
	}
	m.Train(true)
	m.SetCheckpointing(true)
	if _, err := ts.GradSetEnabled(true); err != nil {
		return nil, err
	}
	p, err := m.Begin(model.Inputs{InputIDs: in})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer p.Close()
	if atLoss != nil {
		atLoss()
	}
	sq, err := p.Logits().Square(false)
	if err != nil {
		return nil, err
	}
	loss, err := sq.Mean(gotch.Float, true)
	if err != nil {
		return nil, err
	}
	defer loss.Drop()
	if err := p.Backward(loss); err != nil {
		return nil, fmt.Errorf("backward: %w", err)
	}
	if out, err = appendValues(out, p.Logits()); err != nil {
		return nil, err
	}
	if out, err = appendValues(out, loss); err != nil {
		return nil, err
	}
	for _, nt := range m.TrainableTensors() {
		if !nt.Trainable {
			continue
		}
		g, err := nt.Tensor.Grad(false)
		if err != nil {
			return nil, fmt.Errorf("grad of %s: %w", nt.Name, err)
		}
		out, err = appendValues(out, g)
		g.Drop()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// appendEvalLogits appends to out the logits of an evaluation Forward of m on ids
// (grad mode off).
func appendEvalLogits(out []float32, m *model.Model, ids *ts.Tensor) ([]float32, error) {
	prev, err := ts.GradSetEnabled(false)
	if err != nil {
		return nil, err
	}
	logits, err := m.Forward(model.Inputs{InputIDs: ids})
	ts.GradSetEnabled(prev)
	if err != nil {
		return nil, fmt.Errorf("eval forward: %w", err)
	}
	defer logits.Drop()
	return appendValues(out, logits)
}

// perturbB fills every lora_B with small deterministic values (it starts at zero).
// injectLoRA injects rank-2 LoRA adapters into every linear layer of m, with B drawn
// non-zero (perturbB), so that A, B and the blocks below all get gradient.
func injectLoRA(m *model.Model) ([]*lrlora.Adapter, error) {
	spec := adapter.Default()
	spec.Method, spec.R, spec.TargetModules = adapter.LoRA, 2, adapter.Targets{AllLinear: true}
	ads, err := m.Inject(spec, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		return nil, err
	}
	return ads, perturbB(ads)
}

// checkRankOutput compares what rank r wrote into out (its <rank>.bin) with want, bit
// for bit, failing t on a failed rank.
func checkRankOutput(t *testing.T, r rankRun, out string, want []float32) {
	t.Helper()
	if r.err != nil {
		t.Fatalf("rank %d: %v\n%s", r.rank, r.err, r.stderr)
	}
	got, err := readFloats(filepath.Join(out, fmt.Sprintf("%d.bin", r.rank)))
	if err != nil {
		t.Fatal(err)
	}
	if d := firstDiff(got, want); d != "" {
		t.Errorf("rank %d differs from the whole model: %s", r.rank, d)
	}
}

func perturbB(ads []*lrlora.Adapter) error {
	for k, a := range ads {
		for _, nt := range a.Tensors() {
			if !strings.HasSuffix(nt.Name, ".lora_B") {
				continue
			}
			shape, err := nt.Tensor.Size()
			if err != nil {
				return err
			}
			vals := make([]float32, shape[0]*shape[1])
			for i := range vals {
				vals[i] = float32(0.01 * math.Sin(float64(i*31+k)))
			}
			src, err := model.Float32Tensor(vals, shape...)
			if err != nil {
				return err
			}
			prev, _ := ts.GradSetEnabled(false)
			nt.Tensor.Copy_(src)
			ts.GradSetEnabled(prev)
			src.Drop()
		}
	}
	return nil
}

func appendValues(out []float32, t *ts.Tensor) ([]float32, error) {
	v, err := tensorkit.Float32s(t)
	if err != nil {
		return nil, err
	}
	return append(out, v...), nil
}

// writeFloats and readFloats move a result vector between processes.
func writeFloats(path string, v []float32) error {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return os.WriteFile(path, b, 0o644)
}

func readFloats(path string) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

// firstDiff returns "" when a and b are bitwise equal.
func firstDiff(a, b []float32) string {
	if len(a) != len(b) {
		return fmt.Sprintf("%d values, want %d", len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return fmt.Sprintf("value %d of %d: %v, want %v", i, len(a), a[i], b[i])
		}
	}
	return ""
}

// reference runs the workload on the model loaded whole.
func reference(t *testing.T, dir string, opts ...model.Option) []float32 {
	t.Helper()
	m, err := model.Load(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := workload(m, 2, 6, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// frozenTensors lists the frozen weights of the model in dir, as a Gatherer defers them.
func frozenTensors(t *testing.T, dir string) []shard.Tensor {
	t.Helper()
	cfg, err := model.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	tensors, err := shard.FrozenTensors(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tensors
}
