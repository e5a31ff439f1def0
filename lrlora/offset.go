package lrlora

import (
	"fmt"
	"math"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// Offset is one adapter's view of the constant-offset failure mode (docs/method.md
// §10): with a = 0 and B = 0 at initialisation only a gets a gradient at first, and
// the paper's φ(0) = Σ_k a_k f(−c·b_k·g_k) becomes a constant added to every entry of
// ΔW.
type Offset struct {
	// RawPhi0 is the paper's φ(0) = Σ_k a_k f(−c·b_k·g_k), before any centring.
	RawPhi0 float64
	// Phi0 is the adapter's own φ at 0: RawPhi0, or 0 when centred or residual
	// (also 0 for LoRA and SineLoRA).
	Phi0 float64
	// Slope0 is the adapter's own φ'(0): Σ_k a_k c b_k f'(−c·b_k·g_k), plus 1 when
	// residual (1 for LoRA, ω/√d_in for SineLoRA).
	Slope0 float64
	// ConstShare is the share of ‖ΔW‖²_F in its constant part: N·mean(ΔW)²/‖ΔW‖²_F
	// for N entries, in [0, 1]; 0 when ΔW = 0. The paper's failure mode shows as a
	// share near 1 (and a stable rank near 1).
	ConstShare float64
}

// Offset computes the adapter's Offset from its current tensors (no autograd).
func (ad *Adapter) Offset() (Offset, error) {
	var o Offset
	err := tensorkit.NoGrad(func() error {
		switch ad.spec.Method {
		case adapter.LoRA:
			o.Slope0 = 1
		case adapter.SineLoRA:
			o.Slope0 = ad.spec.SineOmega / math.Sqrt(float64(ad.dIn))
		case adapter.LRLoRA:
			a, err := tensorkit.Float64s(ad.phi.amplitude)
			if err != nil {
				return err
			}
			beta, err := tensorkit.Float64s(ad.phi.bandwidthRaw)
			if err != nil {
				return err
			}
			g, err := tensorkit.Float64s(ad.phi.grid)
			if err != nil {
				return err
			}
			for k := range a {
				b := softplus(beta[k])
				t := -ad.phiScale * b * g[k]
				o.RawPhi0 += a[k] * basisValue(ad.spec.Basis, t)
				o.Slope0 += a[k] * ad.phiScale * b * basisSlope(ad.spec.Basis, t)
			}
			if !ad.spec.Centred() {
				o.Phi0 = o.RawPhi0
			}
			if ad.spec.Residual {
				o.Slope0++
			}
		}
		dw, err := ad.DeltaWeight()
		if err != nil {
			return err
		}
		defer dw.Drop()
		v, err := tensorkit.Float64s(dw)
		if err != nil {
			return err
		}
		var sum, sq float64
		for _, x := range v {
			sum, sq = sum+x, sq+x*x
		}
		if sq > 0 {
			o.ConstShare = sum * sum / (float64(len(v)) * sq)
		}
		return nil
	})
	if err != nil {
		return Offset{}, fmt.Errorf("lrlora: offset of %q: %w", ad.name, err)
	}
	return o, nil
}

func softplus(x float64) float64 {
	if x > 20 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// basisSlope is f'(t) of docs/method.md §2 in float64 (sinc by its Taylor series
// −π²t/3 + π⁴t³/30 for |t| < 1e-3, where the closed form cancels).
func basisSlope(basis adapter.Basis, t float64) float64 {
	switch basis {
	case adapter.Gaussian:
		return -2 * t * math.Exp(-t*t)
	case adapter.BSpline:
		u := math.Abs(t)
		switch {
		case u < 1:
			return t * (1.5*u - 2)
		case u < 2:
			return -math.Copysign((2-u)*(2-u)/2, t)
		}
		return 0
	}
	if math.Abs(t) < 1e-3 {
		p2 := math.Pi * math.Pi
		return t * (-p2/3 + p2*p2*t*t/30)
	}
	return (math.Cos(math.Pi*t) - basisValue(adapter.Sinc, t)) / t
}
