package adapter

import (
	"regexp"
	"strings"
)

// Targets selects the linear layers that get adapters, with PEFT's target_modules
// rules: a module path matches a name when it equals the name or ends with "." + name;
// a regular expression must match the whole path; AllLinear takes every linear layer
// except the output layer (lm_head) and classification heads, which are never adapted
// (the model that applies Targets leaves them out).
//
// Its text form (String, ParseTargets, JSON) is "all-linear", "regex:<expression>"
// ("re:" is read too) or comma-separated names; in YAML it may also be a list of names.
type Targets struct {
	Names     []string
	Regex     string
	AllLinear bool
}

// ParseTargets reads the text form and validates it: an empty list, an empty name or
// an invalid regular expression is an error wrapping ErrInvalid.
func ParseTargets(s string) (Targets, error) {
	t := parseTargets(s)
	return t, t.Validate()
}

// parseTargets reads the text form without judging it; Validate does.
func parseTargets(s string) Targets {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Targets{}
	case strings.EqualFold(s, "all-linear"):
		return Targets{AllLinear: true}
	case strings.HasPrefix(s, "regex:"):
		return Targets{Regex: strings.TrimPrefix(s, "regex:")}
	case strings.HasPrefix(s, "re:"):
		return Targets{Regex: strings.TrimPrefix(s, "re:")}
	}
	names := strings.Split(s, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	return Targets{Names: names}
}

// String is the text form: "all-linear", "regex:<expression>" or "name1,name2,…".
func (t Targets) String() string {
	switch {
	case t.AllLinear:
		return "all-linear"
	case t.Regex != "":
		return "regex:" + t.Regex
	}
	return strings.Join(t.Names, ",")
}

// Match reports whether the module path name is selected. For AllLinear it is true
// for every name (the caller asks only about linear layers that are not heads); an
// invalid regular expression selects nothing.
func (t Targets) Match(name string) bool {
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

func (t Targets) compile() (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + t.Regex + `)$`)
}

// MarshalText writes the text form (JSON stores Targets as one string).
func (t Targets) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads the text form; Validate judges the result.
func (t *Targets) UnmarshalText(b []byte) error {
	*t = parseTargets(string(b))
	return nil
}

// MarshalYAML writes a list of names, or the text form for all-linear and regexes.
func (t Targets) MarshalYAML() (any, error) {
	if t.AllLinear || t.Regex != "" {
		return t.String(), nil
	}
	if t.Names == nil {
		return []string{}, nil
	}
	return t.Names, nil
}
