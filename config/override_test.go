package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
)

func TestOverridesSetValuesAsYAML(t *testing.T) {
	src := "train:\n  lr: 1e-3\n  max_steps: 5\nadapter:\n  target_modules: [q_proj]\n"
	c, err := Decode([]byte(src), "cfg.yaml", []string{
		"train.lr=5e-5",
		"train.betas=[0.8, 0.9]",
		"adapter.target_modules=[q_proj, v_proj]",
		"adapter.phi.k=24",               // a nested section the file does not have
		"dist.timeout=2m",                // a section the file does not have
		"data.train=a.json",              // scalar for a one-element list
		"checkpoint.resume=runs/x/ck-10", // a path with slashes
		"train.max_steps=7",
		"train.max_steps=9", // later overrides win
		"data.template=alpaca",
		"model.path=",
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		got, want any
	}{
		{c.Train.LR, 5e-5},
		{c.Train.Betas, [2]float64{0.8, 0.9}},
		{c.Adapter.TargetModules.Names, []string{"q_proj", "v_proj"}},
		{c.Adapter.Phi.K, 24},
		{c.Adapter.Phi.L, adapter.Default().L},
		{c.Dist.Timeout.Minutes(), 2.0},
		{[]string(c.Data.Train), []string{"a.json"}},
		{c.Checkpoint.Resume, "runs/x/ck-10"},
		{c.Train.MaxSteps, 9},
		{c.Model.Path, ""},
	}
	for i, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("check %d: got %v, want %v", i, ch.got, ch.want)
		}
	}
	if w := c.Where("train.lr"); w != "--set train.lr=5e-5" {
		t.Errorf("Where(train.lr) = %q", w)
	}
}

func TestOverrideIntoEmptySection(t *testing.T) {
	c, err := Decode([]byte("train:\n"), "cfg.yaml", []string{"train.lr=0.5"})
	if err != nil || c.Train.LR != 0.5 {
		t.Fatalf("lr %v, err %v", c.Train.LR, err)
	}
}

func TestOverrideErrors(t *testing.T) {
	cases := []struct {
		set  string
		is   error
		want string
	}{
		{"train.learning_rat=1e-4", ErrUnknownKey,
			"unknown key `learning_rat` in section train at --set train.learning_rat=1e-4; did you mean `lr`?"},
		{"trian.lr=1", ErrUnknownKey, "unknown section `trian` at --set trian.lr=1; did you mean `train`?"},
		{"train.lr=fast", ErrType,
			"key `lr` in section train: expected a number, got the string \"fast\" at --set train.lr=fast"},
		{"train=3", ErrOverride, "`train` is a section at --set train=3; set one of its keys, e.g. --set train.seed=…"},
		{"train.lr.x=3", ErrOverride, "`train.lr` is a key, not a section"},
		{"train.lr", ErrOverride, `override "train.lr" is not section.key=value`},
		{"=3", ErrOverride, "is not section.key=value"},
		{"train.betas=[0.9, 0.99", ErrOverride, "the value of train.betas is not valid YAML"},
		{"train.betas=[0.9, x]", ErrType, "expected a list of 2 numbers, got a list at --set train.betas=[0.9, x]"},
	}
	for _, tc := range cases {
		_, err := Decode([]byte("train:\n  lr: 1\n"), "cfg.yaml", []string{tc.set})
		l := issuesOf(t, err)
		if len(l) != 1 || !errors.Is(err, tc.is) || !strings.Contains(l[0].Error(), tc.want) {
			t.Errorf("--set %s: %v\nwant one %v containing %q", tc.set, err, tc.is, tc.want)
		}
	}
}

// A value of the wrong type in the file is reported even when --set replaces it: the
// error names the file's line and the override, and a valid file value stays silent.
func TestOverrideDoesNotHideAFileTypeError(t *testing.T) {
	src := "train:\n  lr: fast\n  max_steps: 5\n"
	_, err := Decode([]byte(src), "cfg.yaml", []string{"train.lr=1e-4"})
	l := issuesOf(t, err)
	want := "key `lr` in section train: expected a number, got the string \"fast\" at cfg.yaml:2; " +
		"overridden by --set train.lr=1e-4"
	if len(l) != 1 || !errors.Is(err, ErrType) || !strings.Contains(l[0].Error(), want) {
		t.Fatalf("err = %v\nwant one ErrType containing %q", err, want)
	}
	// A nested key and a list: the same.
	_, err = Decode([]byte("adapter:\n  phi:\n    k: [1]\n"), "cfg.yaml", []string{"adapter.phi.k=8"})
	if l := issuesOf(t, err); len(l) != 1 || l[0].Key != "adapter.phi.k" || !strings.Contains(l[0].Error(), "cfg.yaml:3") {
		t.Fatalf("nested: %v", err)
	}
	// A valid value in the file is simply replaced.
	c, err := Decode([]byte("train:\n  lr: 0.1\n"), "cfg.yaml", []string{"train.lr=1e-4"})
	if err != nil || c.Train.LR != 1e-4 || c.Where("train.lr") != "--set train.lr=1e-4" {
		t.Fatalf("valid file value: lr %v, where %q, err %v", c.Train.LR, c.Where("train.lr"), err)
	}
}
