package adapter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// A manifest written before φ's variant keys existed reads back, once resolved, as
// today's default: the paper's φ (zero init, no centring, φ's rate that of A and B).
func TestOldManifestResolvesToDefault(t *testing.T) {
	const old = `{"method":"lrlora","r":8,"alpha":16,"rslora":false,"dropout":0,` +
		`"target_modules":"q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",` +
		`"k":50,"l":3,"grid":"uniform","basis":"sinc","share":"none","sine_omega":200}`
	var s Spec
	if err := json.Unmarshal([]byte(old), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("an old manifest's spec is invalid: %v", err)
	}
	if r := s.Resolved(); !equal(r, Default().Resolved()) {
		t.Errorf("old manifest resolves to %+v\nwant %+v", r, Default().Resolved())
	}
}

// Each variant key is checked and named; the dead and the doubled combinations are
// refused up front.
func TestVariantProblems(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func(*Phi)
		key    string // "" for valid
		substr string
	}{
		{"residual", func(p *Phi) { p.Residual = true }, "", ""},
		{"residual small", func(p *Phi) { p.Residual, p.Init = true, InitSmall }, "", ""},
		{"center small", func(p *Phi) { p.Center, p.Init, p.InitValue = true, InitSmall, 0.1 }, "", ""},
		{"center identity", func(p *Phi) { p.Center, p.Init = true, InitIdentity }, "", ""},
		{"center residual", func(p *Phi) { p.Center, p.Residual = true, true }, "", ""},
		{"identity", func(p *Phi) { p.Init = InitIdentity }, "", ""},
		{"lr scale", func(p *Phi) { p.LRScale = 10 }, "", ""},
		{"center zero", func(p *Phi) { p.Center = true }, "adapter.phi.center", "no parameter ever gets a gradient"},
		{"residual identity", func(p *Phi) { p.Residual, p.Init = true, InitIdentity }, "adapter.phi.init", "2x"},
		{"init name", func(p *Phi) { p.Init = "ones" }, "adapter.phi.init", "want zero, small or identity"},
		{"init value", func(p *Phi) { p.InitValue = -0.1 }, "adapter.phi.init_value", "want a finite number > 0"},
		{"lr scale negative", func(p *Phi) { p.LRScale = -1 }, "adapter.phi.lr_scale", "want a finite number > 0"},
	} {
		s := Default()
		c.edit(&s.Phi)
		ps := s.Problems()
		if c.key == "" {
			if len(ps) != 0 {
				t.Errorf("%s: %v", c.name, ps)
			}
			continue
		}
		if len(ps) != 1 || ps[0].Key != c.key || !strings.Contains(ps[0].Error(), c.substr) {
			t.Errorf("%s: problems %v, want one on %s containing %q", c.name, ps, c.key, c.substr)
		}
		if err := s.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", c.name, err)
		}
	}
}

func TestParseInitAndCentred(t *testing.T) {
	if got, err := ParseInit(" Identity "); err != nil || got != InitIdentity {
		t.Errorf("ParseInit(Identity) = %v, %v", got, err)
	}
	if _, err := ParseInit("ones"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseInit(ones): %v", err)
	}
	for _, c := range []struct {
		center, residual, want bool
	}{{false, false, false}, {true, false, true}, {false, true, true}, {true, true, true}} {
		if got := (Phi{Center: c.center, Residual: c.residual}).Centred(); got != c.want {
			t.Errorf("center %v residual %v: Centred %v", c.center, c.residual, got)
		}
	}
}
