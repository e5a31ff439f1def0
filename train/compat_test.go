package train

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/config"
)

// FromConfig hands the config's adapter section on as it is: the same Spec, nothing
// re-encoded.
func TestFromConfigKeepsTheAdapterSpec(t *testing.T) {
	src := "adapter:\n  method: sinelora\n  r: 6\n  rslora: true\n  target_modules: 'regex:.*\\.(q|v)_proj'\n" +
		"  phi: {k: 12, l: 2, grid: chebyshev, basis: bspline, share: grid}\n  sine_omega: 50\n"
	c, err := config.Decode([]byte(src), "cfg.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	o, err := FromConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(o.Adapter, c.Adapter) {
		t.Errorf("options adapter %+v\nconfig adapter  %+v", o.Adapter, c.Adapter)
	}
	want := adapter.Spec{Method: adapter.SineLoRA, R: 6, Alpha: 12, RSLoRA: true,
		TargetModules: adapter.Targets{Regex: `.*\.(q|v)_proj`},
		Phi: adapter.Phi{K: 12, L: 2, Grid: adapter.Chebyshev, Basis: adapter.BSpline, Share: adapter.ShareGrid,
			Init: adapter.InitZero, InitValue: adapter.DefaultInitValue, LRScale: 1},
		SineOmega: 50}
	if !reflect.DeepEqual(o.Adapter, want) {
		t.Errorf("options adapter %+v, want %+v", o.Adapter, want)
	}
}

// oldAdapterJSON is options.adapter of tinyOptions as manifests recorded it before the
// adapter settings became one adapter.Spec (written by train.AdapterOptions).
const oldAdapterJSON = `{"method":"lrlora","r":4,"alpha":8,"rslora":false,"dropout":0,` +
	`"target_modules":"q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",` +
	`"k":8,"l":3,"grid":"uniform","basis":"sinc","share":"none","sine_omega":200}`

// A checkpoint whose manifest has the old adapter layout resumes: every shaping key
// reads back equal to today's options.
func TestOldManifestAdapterLayoutResumes(t *testing.T) {
	o := trainedRun(t)
	path := filepath.Join(ckptDir(o, 6), checkpoint.ManifestName)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var man map[string]any
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	var old any
	if err := json.Unmarshal([]byte(oldAdapterJSON), &old); err != nil {
		t.Fatal(err)
	}
	man["options"].(map[string]any)["adapter"] = old
	if raw, err = json.Marshal(man); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Train.MaxSteps = 7
	res, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil {
		t.Fatalf("resume from the old layout: %v", err)
	}
	if res.Step != 7 || res.ResumedFrom != ckptDir(o, 6) {
		t.Errorf("result %+v", res)
	}
}

// Regex targets were recorded as "re:<expression>"; they read back as the same Targets
// and reconcile with options that spell them today.
func TestOldManifestRegexTargetsReconcile(t *testing.T) {
	now, err := tinyOptions(t, "/runs/a").resolve()
	if err != nil {
		t.Fatal(err)
	}
	now.Adapter.TargetModules = adapter.Targets{Regex: `model\.layers\.0\..*`}
	raw, err := json.Marshal(now)
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	tree["adapter"].(map[string]any)["target_modules"] = `re:model\.layers\.0\..*`
	raw, _ = json.Marshal(tree)
	var saved Options
	if err := json.Unmarshal(raw, &saved); err != nil {
		t.Fatal(err)
	}
	warnings, err := reconcile(saved, now)
	if err != nil || len(warnings) != 0 {
		t.Errorf("reconcile: warnings %v, err %v", warnings, err)
	}
}

// The resume rule's shaping keys are the ones it always had: every adapter setting in
// the manifest but dropout, and the head size.
func TestShapingKeysAreTheAdapters(t *testing.T) {
	want := []string{"adapter.alpha", "adapter.basis", "adapter.center", "adapter.fixed_bandwidth", "adapter.grid", "adapter.k", "adapter.l",
		"adapter.method", "adapter.r", "adapter.residual", "adapter.rslora", "adapter.share", "adapter.sine_omega",
		"adapter.target_modules", "model.num_labels"}
	if got := slices.Sorted(maps.Keys(shapingKeys)); !slices.Equal(got, want) {
		t.Errorf("shaping keys %v\nwant %v", got, want)
	}
}
