package train

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// tinyModel is the tiny Llama every test trains, written once per test binary
// (TestMain removes it).
func tinyModel(t testing.TB) string {
	t.Helper()
	return tinymodel.Shared(t, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1})
}

// testdata is a dataset file of package data.
func testdata(name string) string {
	p, _ := filepath.Abs(filepath.Join("..", "data", "testdata", name))
	return p
}

// tinyOptions trains the tiny Llama on the tiny alpaca task for a few steps.
func tinyOptions(t testing.TB, out string) Options {
	o := DefaultOptions()
	o.Model.Path = tinyModel(t)
	o.Adapter.R = 4
	o.Adapter.K = 8
	o.Data.Format = "alpaca_json"
	o.Data.Train = []string{testdata("alpaca_tiny_train.json")}
	o.Data.MaxLen = 96
	o.Data.Seed = 7
	o.Train.Seed = 3
	o.Train.MaxSteps = 6
	o.Train.MicroBatchSize = 2
	o.Train.GradAccumSteps = 2
	o.Train.LR = 1e-2
	o.Train.LogEvery = 1
	o.Checkpoint.Every = 2
	o.Checkpoint.KeepLast = 2
	o.Output.Dir = out
	return o
}

// metricsOf reads metrics.jsonl: step records and eval records.
func metricsOf(t testing.TB, dir string) (steps, evals []map[string]any) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		if _, ok := rec["eval_loss"]; ok {
			evals = append(evals, rec)
		} else {
			steps = append(steps, rec)
		}
	}
	return steps, evals
}

// stepsAgree fails the test unless runs a and b (named aName, bName in messages) logged
// steps records each and every step's loss and gradient norm agree within tol,
// relative to b's.
func stepsAgree(t *testing.T, steps int, tol float64, aName, bName string, aLoss, aNorm, bLoss, bNorm []float64) {
	t.Helper()
	if len(aLoss) != steps || len(bLoss) != steps {
		t.Fatalf("%d and %d step records, want %d", len(aLoss), len(bLoss), steps)
	}
	for i := range steps {
		for _, c := range []struct {
			what      string
			got, want float64
		}{{"loss", aLoss[i], bLoss[i]}, {"grad norm", aNorm[i], bNorm[i]}} {
			if d := math.Abs(c.got-c.want) / math.Abs(c.want); !(d <= tol) {
				t.Errorf("step %d: %s %.15g %s, %.15g %s (relative difference %.3g)", i+1, c.what, c.got, aName, c.want, bName, d)
			}
		}
	}
}
