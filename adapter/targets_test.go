package adapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

func TestParseTargets(t *testing.T) {
	good := map[string]Targets{
		"all-linear":            {AllLinear: true},
		"ALL-LINEAR":            {AllLinear: true},
		"q_proj, v_proj":        {Names: []string{"q_proj", "v_proj"}},
		`re:.*\.(q|v)_proj`:     {Regex: `.*\.(q|v)_proj`},
		`regex:.*\.(q|v)_proj`:  {Regex: `.*\.(q|v)_proj`},
		"self_attn.o_proj":      {Names: []string{"self_attn.o_proj"}},
		"query,key,value,dense": {Names: []string{"query", "key", "value", "dense"}},
	}
	for spec, want := range good {
		got, err := ParseTargets(spec)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ParseTargets(%q) = %v, %v; want %v", spec, got, err, want)
		}
	}
	for _, bad := range []string{"", "  ", "q_proj,,v_proj", "q_proj,", "re:(", "regex:a[b"} {
		_, err := ParseTargets(bad)
		var ps Problems
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &ps) || ps[0].Key != "adapter.target_modules" {
			t.Errorf("ParseTargets(%q) error %v, want ErrInvalid naming adapter.target_modules", bad, err)
		}
	}
}

// PEFT's rule: a name matches a module path that equals it or ends with "." + name; a
// regex must match the whole path.
func TestTargetsMatchLikePEFT(t *testing.T) {
	names := Targets{Names: []string{"q_proj", "self_attn.o_proj"}}
	re := Targets{Regex: `model\.layers\.1\..*_proj`}
	encoder := Targets{Names: EncoderTargetModules}
	qv := Targets{Regex: `.*\.(q|v)_proj`}
	for _, c := range []struct {
		t     Targets
		name  string
		match bool
	}{
		{names, "model.layers.0.self_attn.q_proj", true},
		{names, "q_proj", true},
		{names, "model.layers.0.self_attn.xq_proj", false}, // a suffix, but not a dotted one
		{names, "model.layers.0.self_attn.o_proj", true},
		{names, "model.layers.0.cross_attn.o_proj", false},
		{re, "model.layers.1.mlp.up_proj", true},
		{re, "model.layers.11.mlp.up_proj", false},
		{re, "base.model.layers.1.mlp.up_proj", false}, // full match only
		{encoder, "roberta.encoder.layer.0.attention.self.query", true},
		{encoder, "roberta.encoder.layer.0.attention.output.dense", true},
		{encoder, "roberta.encoder.layer.0.intermediate.dense", true},
		{encoder, "roberta.encoder.layer.0.output.dense", true},
		{encoder, "roberta.pooler.dense", false},
		{encoder, "classifier.dense", false},
		{encoder, "myquery", false}, // a suffix must start at a dot
		{qv, "model.layers.3.self_attn.q_proj", true},
		{qv, "model.layers.3.self_attn.k_proj", false},
		{qv, "q_proj", false}, // the regex matches the whole name
		{Targets{AllLinear: true}, "anything", true},
		{Targets{Regex: "("}, "x", false}, // an invalid regex selects nothing
	} {
		if got := c.t.Match(c.name); got != c.match {
			t.Errorf("%v.Match(%q) = %v, want %v", c.t, c.name, got, c.match)
		}
	}
}

// The text form is the same in String, JSON and ParseTargets, and reads back equal.
func TestTargetsTextForm(t *testing.T) {
	for want, tm := range map[string]Targets{
		"all-linear":    {AllLinear: true},
		"regex:a.*":     {Regex: "a.*"},
		"q_proj,v_proj": {Names: []string{"q_proj", "v_proj"}},
	} {
		if got := tm.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		raw, err := json.Marshal(tm)
		if err != nil || string(raw) != `"`+want+`"` {
			t.Errorf("JSON %s, %v", raw, err)
		}
		var back Targets
		if err := json.Unmarshal(raw, &back); err != nil || back.String() != want {
			t.Errorf("JSON read back %v, %v", back, err)
		}
	}
	var old Targets // manifests written before this package spelled regexes "re:"
	if err := json.Unmarshal([]byte(`"re:model\\.layers\\.0\\..*"`), &old); err != nil || old.Regex != `model\.layers\.0\..*` {
		t.Errorf("re: form: %+v, %v", old, err)
	}
}
