package config

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors; match them with errors.Is. Load and Validate return an Issues list
// whose entries wrap them.
var (
	// ErrSyntax: the file is not valid YAML.
	ErrSyntax = errors.New("config: invalid YAML")
	// ErrUnknownKey: a key or section that the configuration does not have.
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrDuplicateKey: a key given twice in the same section.
	ErrDuplicateKey = errors.New("config: duplicate key")
	// ErrType: a value of the wrong type (a string where a number belongs, …).
	ErrType = errors.New("config: wrong type")
	// ErrOverride: a --set override that is not section.key=value.
	ErrOverride = errors.New("config: invalid override")
	// ErrInvalid: a value out of range, a bad combination, or a missing file.
	ErrInvalid = errors.New("config: invalid value")
)

// Issue is one problem with a configuration: what is wrong, which key, where it was set,
// and a hint (a suggested key, the accepted values).
type Issue struct {
	Err   error  // the sentinel: ErrUnknownKey, ErrType, ErrInvalid, …
	Key   string // the key path, "train.lr", or "" for the whole file
	Where string // "cfg.yaml:12", "--set train.lr=x", or "" for a default value
	Msg   string // what is wrong
	Hint  string // "did you mean `lr`?", or ""
}

func (i *Issue) Error() string {
	var b strings.Builder
	b.WriteString(i.Msg)
	if i.Where != "" {
		b.WriteString(" at ")
		b.WriteString(i.Where)
	}
	if i.Hint != "" {
		b.WriteString("; ")
		b.WriteString(i.Hint)
	}
	return b.String()
}

func (i *Issue) Unwrap() error { return i.Err }

// Issues is every problem found in one pass, in file order for decoding problems and
// section order for validation problems.
type Issues []*Issue

func (l Issues) Error() string {
	if len(l) == 1 {
		return "config: " + l[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config: %d problems:", len(l))
	for _, i := range l {
		b.WriteString("\n  - ")
		b.WriteString(i.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As look at every issue.
func (l Issues) Unwrap() []error {
	errs := make([]error, len(l))
	for k, i := range l {
		errs[k] = i
	}
	return errs
}

// orNil returns nil for an empty list, so that callers can compare the error with nil.
func (l Issues) orNil() error {
	if len(l) == 0 {
		return nil
	}
	return l
}
