package config

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lrtrain/lrtrain/data"
)

// TargetModules selects the adapted linear layers, with PEFT's target_modules rules
// (the same as model.Targets): a module path matches a name when it equals the name or
// ends with "." + name; a regular expression must match the whole path; all-linear takes
// every linear layer except the output and classification heads.
//
// In YAML it is a list of names, a comma-separated string of names, "all-linear", or
// "regex:<expression>" ("re:" is accepted too).
type TargetModules struct {
	Names     []string
	Regex     string
	AllLinear bool
}

// Spec returns the form model.ParseTargets reads: "all-linear", "re:<regex>" or
// "name1,name2,…".
func (t TargetModules) Spec() string {
	switch {
	case t.AllLinear:
		return "all-linear"
	case t.Regex != "":
		return "re:" + t.Regex
	}
	return strings.Join(t.Names, ",")
}

// String is the YAML scalar form: "all-linear", "regex:<regex>" or "name1,name2,…".
func (t TargetModules) String() string {
	if t.Regex != "" && !t.AllLinear {
		return "regex:" + t.Regex
	}
	return t.Spec()
}

// Match reports whether the module path name is selected; for all-linear it is true for
// every name, and the caller asks only about linear layers that are not heads.
func (t TargetModules) Match(name string) bool {
	if t.AllLinear {
		return true
	}
	if t.Regex != "" {
		re, err := t.compile()
		return err == nil && re.MatchString(name)
	}
	for _, n := range t.Names {
		if name == n || strings.HasSuffix(name, "."+n) {
			return true
		}
	}
	return false
}

func (t TargetModules) compile() (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + t.Regex + `)$`)
}

func (t *TargetModules) decodeNode(n *yaml.Node) error {
	*t = TargetModules{}
	switch n.Kind {
	case yaml.ScalarNode:
		s := strings.TrimSpace(n.Value)
		switch {
		case strings.EqualFold(s, "all-linear"):
			t.AllLinear = true
		case strings.HasPrefix(s, "regex:"):
			t.Regex = strings.TrimPrefix(s, "regex:")
		case strings.HasPrefix(s, "re:"):
			t.Regex = strings.TrimPrefix(s, "re:")
		default:
			for _, name := range strings.Split(s, ",") {
				if name = strings.TrimSpace(name); name != "" {
					t.Names = append(t.Names, name)
				}
			}
		}
		return nil
	case yaml.SequenceNode:
		names, err := stringList(n)
		t.Names = names
		return err
	}
	return errWant("a list of module names, all-linear or regex:<expression>")
}

// MarshalYAML writes a list of names, or the scalar form for all-linear and regexes.
func (t TargetModules) MarshalYAML() (any, error) {
	if t.AllLinear || t.Regex != "" {
		return t.String(), nil
	}
	if t.Names == nil {
		return []string{}, nil
	}
	return t.Names, nil
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
