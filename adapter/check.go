package adapter

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// ErrInvalid is wrapped by every error about an adapter setting.
var ErrInvalid = errors.New("adapter: invalid setting")

// Problem is one invalid setting. Key is its path in the config file ("adapter.r",
// "adapter.phi.k"); Msg says what it is ("is 0", `is "uniformm"`); Want says what it
// may be ("want an integer ≥ 1"), or "" when Msg says it all. For an enumerated
// setting Choices holds the accepted names, so that a caller can suggest the nearest.
type Problem struct {
	Key     string
	Value   string
	Msg     string
	Want    string
	Choices []string
}

func (p Problem) Error() string {
	s := "`" + p.Key + "` " + p.Msg
	if p.Want != "" {
		s += "; " + p.Want
	}
	return s
}

// Problems is every invalid setting of a spec; as an error it wraps ErrInvalid.
type Problems []Problem

func (ps Problems) Error() string {
	msgs := make([]string, len(ps))
	for i, p := range ps {
		msgs[i] = p.Error()
	}
	return ErrInvalid.Error() + ": " + strings.Join(msgs, "; ")
}

func (ps Problems) Unwrap() error { return ErrInvalid }

// Validate returns the spec's Problems as an error, or nil.
func (s Spec) Validate() error {
	if ps := s.Problems(); len(ps) > 0 {
		return ps
	}
	return nil
}

// Validate returns the Problems of φ's settings as an error, or nil.
func (p Phi) Validate() error {
	if ps := p.problems(); len(ps) > 0 {
		return ps
	}
	return nil
}

// Validate returns the Problems of the target list as an error, or nil.
func (t Targets) Validate() error {
	if ps := t.problems(); len(ps) > 0 {
		return ps
	}
	return nil
}

// Problems checks every setting, in the order of the config file's keys. α = 0 is
// valid (it means 2r); an α that only follows an invalid r is not reported twice.
func (s Spec) Problems() Problems {
	var c checker
	oneOf(&c, "adapter.method", s.Method, Methods)
	c.atLeast("adapter.r", s.R, 1)
	if s.Alpha != 0 && !(s.R < 1 && s.Alpha == 2*float64(s.R)) {
		c.inRange("adapter.alpha", s.Alpha, 0, math.Inf(1), true)
	}
	c.inRange("adapter.dropout", s.Dropout, 0, 1, false)
	c.ps = append(c.ps, s.TargetModules.problems()...)
	if slices.ContainsFunc(s.ModulesToSave, blank) {
		c.bad("adapter.modules_to_save", "", "has an empty module name", "")
	}
	c.ps = append(c.ps, s.Phi.problems()...)
	c.inRange("adapter.sine_omega", s.SineOmega, 0, math.Inf(1), true)
	return c.ps
}

func (p Phi) problems() Problems {
	var c checker
	c.atLeast("adapter.phi.k", p.K, 2)
	c.inRange("adapter.phi.l", p.L, 0, math.Inf(1), true)
	oneOf(&c, "adapter.phi.grid", p.Grid, Grids)
	oneOf(&c, "adapter.phi.basis", p.Basis, Bases)
	oneOf(&c, "adapter.phi.share", p.Share, Sharings)
	p.variantProblems(&c)
	return c.ps
}

func (t Targets) problems() Problems {
	const key = "adapter.target_modules"
	var c checker
	switch {
	case t.AllLinear:
	case t.Regex != "":
		if _, err := t.compile(); err != nil {
			c.bad(key, t.String(), fmt.Sprintf("has an invalid regex %q", t.Regex), err.Error())
		}
	case len(t.Names) == 0:
		c.bad(key, "", "is empty", "want module names, all-linear or regex:<expression>")
	}
	if slices.ContainsFunc(t.Names, blank) {
		c.bad(key, t.String(), "has an empty module name", "")
	}
	return c.ps
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }

// checker collects Problems with the messages of the config file's other checks.
type checker struct{ ps Problems }

func (c *checker) bad(key, value, msg, want string) {
	c.ps = append(c.ps, Problem{Key: key, Value: value, Msg: msg, Want: want})
}

func oneOf[T ~string](c *checker, key string, v T, values []T) {
	if !slices.Contains(values, v) {
		c.ps = append(c.ps, Problem{Key: key, Value: string(v), Msg: fmt.Sprintf("is %q", string(v)),
			Want: "want " + orList(Names(values)), Choices: Names(values)})
	}
}

func (c *checker) atLeast(key string, n, lo int) {
	if n < lo {
		c.bad(key, fmt.Sprint(n), fmt.Sprintf("is %d", n), fmt.Sprintf("want an integer ≥ %d", lo))
	}
}

// inRange checks lo ≤ x (lo < x when openLo) and x < hi (hi = +Inf: no upper bound).
func (c *checker) inRange(key string, x, lo, hi float64, openLo bool) {
	if !math.IsNaN(x) && !math.IsInf(x, 0) && x < hi && (x > lo || (!openLo && x == lo)) {
		return
	}
	lower := "≥"
	if openLo {
		lower = ">"
	}
	want := fmt.Sprintf("want a finite number %s %g", lower, lo)
	if !math.IsInf(hi, 1) {
		want += fmt.Sprintf(" and < %g", hi)
	}
	c.bad(key, fmt.Sprintf("%g", x), fmt.Sprintf("is %g", x), want)
}
