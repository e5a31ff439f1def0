package train

import (
	"errors"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
)

// Invalid options are refused before anything is read, with the key named.
func TestInvalidOptionsNameTheKey(t *testing.T) {
	for key, change := range map[string]func(*Options){
		"model.path":             func(o *Options) { o.Model.Path = "" },
		"model.dtype":            func(o *Options) { o.Model.DType = "float16" },
		"data.format":            func(o *Options) { o.Data.Format = "csv" },
		"data.train":             func(o *Options) { o.Data.Train = nil },
		"train.micro_batch_size": func(o *Options) { o.Train.MicroBatchSize = 0 },
		"train.schedule":         func(o *Options) { o.Train.Schedule = "step" },
		"train.warmup_ratio":     func(o *Options) { o.Train.WarmupRatio = 1.5 },
		"adapter.target_modules": func(o *Options) { o.Adapter.TargetModules = adapter.Targets{Regex: "("} },
		"adapter":                func(o *Options) { o.Adapter.R = 0 },
		"data.last_batch":        func(o *Options) { o.Data.LastBatch = "keep" },
		"checkpoint.every":       func(o *Options) { o.Checkpoint.Every = -1 },
	} {
		o := tinyOptions(t, t.TempDir())
		change(&o)
		_, err := o.resolve()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err = %v", key, err)
		}
	}
}

// The reconciliation rule: shaping keys must match, others warn and take the new value.
func TestReconcileRule(t *testing.T) {
	a, _ := tinyOptions(t, "/runs/a").resolve()
	b := a
	b.Train.LR, b.Train.EvalEvery, b.Output.Dir = 1, 5, "/runs/b"
	warnings, err := reconcile(a, b) // output.dir changes silently
	if err != nil || len(warnings) != 2 {
		t.Fatalf("warnings %v, err %v", warnings, err)
	}
	b.Adapter.R, b.Adapter.Grid = 16, "chebyshev"
	_, err = reconcile(a, b)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "adapter.r is 4 in the checkpoint and 16") ||
		!strings.Contains(err.Error(), "adapter.grid") {
		t.Errorf("err = %v", err)
	}
}
