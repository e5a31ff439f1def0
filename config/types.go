package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/data"
)

// nodeFormOf returns the YAML form of v's type when the type has one of its own: a
// config type with decodeNode, or adapter.Targets (v must be addressable).
func nodeFormOf(v reflect.Value) (nodeForm, bool) {
	switch p := v.Addr().Interface().(type) {
	case nodeForm:
		return p, true
	case *adapter.Targets:
		return (*targetsForm)(p), true
	}
	return nil, false
}

// targetsForm decodes adapter.target_modules: a list of names, or a scalar in the text
// form adapter.Targets reads ("all-linear", "regex:<expression>", "a,b"). Values are
// judged by Validate (adapter.Spec.Problems), not here.
type targetsForm adapter.Targets

func (t *targetsForm) decodeNode(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return (*adapter.Targets)(t).UnmarshalText([]byte(n.Value))
	case yaml.SequenceNode:
		names, err := stringList(n)
		*t = targetsForm{Names: names}
		return err
	}
	return errWant("a list of module names, all-linear or regex:<expression>")
}

// Paths is a list of files; YAML may give a single string for a one-element list.
type Paths []string

func (p *Paths) decodeNode(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*p = nil
		if n.Value != "" {
			*p = Paths{n.Value}
		}
		return nil
	case yaml.SequenceNode:
		names, err := stringList(n)
		*p = names
		return err
	}
	return errWant("a path or a list of paths")
}

// Template is the instruction prompt: a preset Name ("alpaca", data.AlpacaTemplate), or
// WithInput/NoInput strings with {instruction} and {input} placeholders (data.Template).
// In YAML it is a preset name or a mapping with with_input and no_input.
type Template struct {
	Name      string `yaml:"name"`
	WithInput string `yaml:"with_input"`
	NoInput   string `yaml:"no_input"`
}

// templatePresets are the named templates.
var templatePresets = map[string]data.Template{"alpaca": data.AlpacaTemplate}

func (t *Template) fromScalar(s string) error {
	*t = Template{Name: s}
	return nil
}

// MarshalYAML writes a preset as its name and a custom template as a mapping.
func (t Template) MarshalYAML() (any, error) {
	if t.Name != "" {
		return t.Name, nil
	}
	return struct {
		WithInput string `yaml:"with_input"`
		NoInput   string `yaml:"no_input"`
	}{t.WithInput, t.NoInput}, nil
}

// DataTemplate returns the template package data renders.
func (t Template) DataTemplate() (data.Template, error) {
	if t.Name != "" {
		dt, ok := templatePresets[t.Name]
		if !ok {
			return data.Template{}, fmt.Errorf("%w: unknown template %q (presets: alpaca)", ErrInvalid, t.Name)
		}
		if t.WithInput != "" || t.NoInput != "" {
			return data.Template{}, fmt.Errorf("%w: template has both a name and with_input/no_input", ErrInvalid)
		}
		return dt, nil
	}
	dt := data.Template{WithInput: t.WithInput, NoInput: t.NoInput}
	if err := dt.Validate(); err != nil {
		return data.Template{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return dt, nil
}

// ParseSize reads a byte size: a number with an optional unit, decimal (B, KB, MB, GB, TB:
// powers of 1000, as Hugging Face's max_shard_size) or binary (KiB, MiB, GiB, TiB), case
// insensitive: "5GB" is 5·10⁹ bytes, "500MiB" 500·2²⁰, "1.5GB" 1.5·10⁹, "1024" 1024.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v*mult >= math.MaxInt64 {
		return 0, fmt.Errorf("%w: size %q (want e.g. 5GB, 500MiB or a byte count)", ErrInvalid, s)
	}
	n := int64(math.Round(v * mult))
	if n <= 0 {
		return 0, fmt.Errorf("%w: size %q must be positive", ErrInvalid, s)
	}
	return n, nil
}

// stringList decodes a sequence of scalars; an empty sequence is nil.
func stringList(n *yaml.Node) ([]string, error) {
	var out []string
	for _, item := range n.Content {
		if item.Kind == yaml.AliasNode {
			item = item.Alias
		}
		if item.Kind != yaml.ScalarNode || item.Tag == "!!null" {
			return nil, errWant("a list of strings")
		}
		out = append(out, item.Value)
	}
	return out, nil
}

// wantError says what a value should have been; the decoder adds the key and place.
type wantError struct{ want string }

func (e *wantError) Error() string { return "expected " + e.want }

func errWant(want string) error { return &wantError{want} }
