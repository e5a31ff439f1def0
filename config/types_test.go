package config

import (
	"errors"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := map[string]int64{
		"5GB": 5e9, "5gb": 5e9, "500MiB": 500 << 20, "1.5GB": 1.5e9, "1024": 1024, "10 KB": 10000,
		"2TiB": 2 << 40, "7B": 7, "1kib": 1024,
	}
	for s, want := range good {
		if got, err := ParseSize(s); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "GB", "-1GB", "0", "5 gigs", "NaNGB", "1e30TB"} {
		if _, err := ParseSize(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSize(%q) error = %v, want ErrInvalid", s, err)
		}
	}
}

func TestTargetModulesMatch(t *testing.T) {
	names := TargetModules{Names: EncoderTargetModules}
	regex := TargetModules{Regex: `.*\.(q|v)_proj`}
	cases := []struct {
		t    TargetModules
		name string
		want bool
	}{
		{names, "roberta.encoder.layer.0.attention.self.query", true},
		{names, "roberta.encoder.layer.0.attention.output.dense", true},
		{names, "roberta.encoder.layer.0.intermediate.dense", true},
		{names, "roberta.encoder.layer.0.output.dense", true},
		{names, "roberta.pooler.dense", false},
		{names, "classifier.dense", false},
		{names, "myquery", false}, // a suffix must start at a dot
		{regex, "model.layers.3.self_attn.q_proj", true},
		{regex, "model.layers.3.self_attn.k_proj", false},
		{regex, "q_proj", false}, // the regex matches the whole name
		{TargetModules{AllLinear: true}, "anything", true},
		{TargetModules{Regex: "("}, "x", false},
	}
	for _, tc := range cases {
		if got := tc.t.Match(tc.name); got != tc.want {
			t.Errorf("%v.Match(%q) = %v, want %v", tc.t, tc.name, got, tc.want)
		}
	}
	specs := map[string]TargetModules{
		"all-linear":    {AllLinear: true},
		"re:a.*":        {Regex: "a.*"},
		"q_proj,v_proj": {Names: []string{"q_proj", "v_proj"}},
	}
	for want, tm := range specs {
		if got := tm.Spec(); got != want {
			t.Errorf("Spec() = %q, want %q", got, want)
		}
	}
}

func TestAdapterScaling(t *testing.T) {
	if s := (Adapter{R: 8, Alpha: 16}).Scaling(); s != 2 {
		t.Errorf("α/r = %v, want 2", s)
	}
	if s := (Adapter{R: 16, Alpha: 8, RSLoRA: true}).Scaling(); s != 2 {
		t.Errorf("α/√r = %v, want 2", s)
	}
}
