package adapter

import (
	"fmt"
	"math"
)

// PhiInit is a's initial value (docs/method.md §10).
type PhiInit string

const (
	// InitZero is the paper's a = 0: ΔW = 0 at initialisation, and in the first step
	// only a receives a gradient.
	InitZero PhiInit = "zero"
	// InitSmall is the paper's "small-start": every a_k = Phi.InitValue (0.1 or 0.01).
	InitSmall PhiInit = "small"
	// InitIdentity fits a so that φ(x) ≈ x on [−L, L] at b = 1 (ridge least squares,
	// lrlora.IdentityAmplitudes), so training starts near LoRA.
	InitIdentity PhiInit = "identity"
)

// DefaultInitValue is a_k under init small unless set.
const DefaultInitValue = 0.01

// Inits are the accepted values of phi.init, in the order messages list them.
var Inits = []PhiInit{InitZero, InitSmall, InitIdentity}

// String returns the name, as the config file writes it.
func (i PhiInit) String() string { return string(i) }

// ParseInit reads zero, small or identity, in any case.
func ParseInit(s string) (PhiInit, error) { return parseName("init", s, Inits) }

// Resolved fills the keys a manifest written before they existed leaves at zero:
// init "" is zero, init_value 0 is DefaultInitValue, lr_scale 0 is 1.
func (p Phi) Resolved() Phi {
	if p.Init == "" {
		p.Init = InitZero
	}
	if p.InitValue == 0 {
		p.InitValue = DefaultInitValue
	}
	if p.LRScale == 0 {
		p.LRScale = 1
	}
	return p
}

// Centred reports whether φ(0) is subtracted: phi.center or phi.residual (which is
// always centred).
func (p Phi) Centred() bool { return p.Center || p.Residual }

// variantProblems checks the variant keys: init is a known name, init_value and
// lr_scale are finite and positive (0 means unset, see Resolved), and no combination
// that cannot train or that doubles the identity.
func (p Phi) variantProblems(c *checker) {
	if p.Init != "" {
		oneOf(c, "adapter.phi.init", p.Init, Inits)
	}
	if p.InitValue != 0 {
		c.inRange("adapter.phi.init_value", p.InitValue, 0, math.Inf(1), true)
	}
	if p.LRScale != 0 {
		c.inRange("adapter.phi.lr_scale", p.LRScale, 0, math.Inf(1), true)
	}
	init := p.Resolved().Init
	switch {
	case p.Center && !p.Residual && init == InitZero:
		// a = 0 and B = 0: φ(M) − φ(0) = 0 and every gradient of it vanishes.
		c.bad("adapter.phi.center", "true", "is true with phi.init zero and no phi.residual, so no parameter ever gets a gradient",
			fmt.Sprintf("want phi.init %s or %s, or phi.residual", InitSmall, InitIdentity))
	case p.Residual && init == InitIdentity:
		c.bad("adapter.phi.init", string(init), "is identity with phi.residual, which would start at φ(x) ≈ 2x",
			fmt.Sprintf("want phi.init %s or %s with phi.residual", InitZero, InitSmall))
	}
}
