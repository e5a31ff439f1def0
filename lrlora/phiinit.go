package lrlora

import (
	"fmt"
	"math"
	"strings"

	"github.com/lrtrain/lrtrain/adapter"
)

// IdentityRidge is the regulariser of the identity fit, relative to the mean diagonal
// of FᵀF (see IdentityAmplitudes).
const IdentityRidge = 1e-6

// InitialAmplitudes returns a's initial values under cfg.Init (docs/method.md §10):
// zero (the paper's), small (every a_k = cfg.InitValue) or identity
// (IdentityAmplitudes).
func InitialAmplitudes(cfg adapter.Phi) ([]float64, error) {
	cfg = cfg.Resolved()
	a := make([]float64, cfg.K)
	switch cfg.Init {
	case adapter.InitZero:
		return a, nil
	case adapter.InitSmall:
		for k := range a {
			a[k] = cfg.InitValue
		}
		return a, nil
	case adapter.InitIdentity:
		return IdentityAmplitudes(cfg)
	}
	return nil, fmt.Errorf("%w: phi.init %q", ErrConfig, cfg.Init)
}

// IdentityAmplitudes fits a so that Σ_k a_k f(c·(x − g_k)) ≈ x on [−L, L] at b = 1:
// ridge least squares over N = 40·K equally spaced x_j (the ends included),
//
//	minimise ‖F·a − x‖² + λ‖a‖²,  F_jk = f(c·(x_j − g_k)),  λ = IdentityRidge·tr(FᵀF)/K,
//
// solved by Cholesky on FᵀF + λI. The ridge is needed because neighbouring basis
// functions are nearly collinear (the default grid spacing is 6/49 against sinc's
// width 1) and it keeps a small: without it the solve is ill-conditioned. The fit is
// odd on the symmetric grids, so φ(0) ≈ 0 and φ'(0) ≈ 1.
func IdentityAmplitudes(cfg adapter.Phi) ([]float64, error) {
	g, err := cfg.GridPoints()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c, err := cfg.BasisScale()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	K, N := len(g), 40*len(g)
	ata := make([]float64, K*K)
	atx := make([]float64, K)
	row := make([]float64, K)
	for j := range N {
		x := -cfg.L + 2*cfg.L*float64(j)/float64(N-1)
		for k := range row {
			row[k] = basisValue(cfg.Basis, c*(x-g[k]))
		}
		for k := range row {
			atx[k] += row[k] * x
			for l := range row {
				ata[k*K+l] += row[k] * row[l]
			}
		}
	}
	var trace float64
	for k := range K {
		trace += ata[k*K+k]
	}
	lambda := IdentityRidge * trace / float64(K)
	for k := range K {
		ata[k*K+k] += lambda
	}
	a, ok := choleskySolve(ata, atx, K)
	if !ok {
		return nil, fmt.Errorf("lrlora: identity init: FᵀF + λI is not positive definite (K = %d)", K)
	}
	return a, nil
}

// PhiValue is φ(x) = Σ_k a_k f(c·b_k·(x − g_k)) in float64, for reports and tests.
func PhiValue(basis adapter.Basis, c float64, a, b, g []float64, x float64) float64 {
	var s float64
	for k := range a {
		s += a[k] * basisValue(basis, c*b[k]*(x-g[k]))
	}
	return s
}

// basisValue is f(t) of docs/method.md §2 in float64.
func basisValue(basis adapter.Basis, t float64) float64 {
	switch basis {
	case adapter.Gaussian:
		return math.Exp(-t * t)
	case adapter.BSpline:
		u := math.Abs(t)
		switch {
		case u < 1:
			return 2.0/3 - t*t*(1-u/2)
		case u < 2:
			return (2 - u) * (2 - u) * (2 - u) / 6
		}
		return 0
	}
	if t == 0 {
		return 1
	}
	return math.Sin(math.Pi*t) / (math.Pi * t)
}

// choleskySolve solves S·x = y for a symmetric positive definite n×n S (row-major);
// false when S is not positive definite. S is overwritten by its factor.
func choleskySolve(s, y []float64, n int) ([]float64, bool) {
	for i := range n {
		for j := 0; j <= i; j++ {
			sum := s[i*n+j]
			for k := range j {
				sum -= s[i*n+k] * s[j*n+k]
			}
			if i == j {
				if sum <= 0 || math.IsNaN(sum) {
					return nil, false
				}
				s[i*n+i] = math.Sqrt(sum)
			} else {
				s[i*n+j] = sum / s[j*n+j]
			}
		}
	}
	x := append([]float64(nil), y...)
	for i := range n { // L·z = y
		for k := range i {
			x[i] -= s[i*n+k] * x[k]
		}
		x[i] /= s[i*n+i]
	}
	for i := n - 1; i >= 0; i-- { // Lᵀ·x = z
		for k := i + 1; k < n; k++ {
			x[i] -= s[k*n+i] * x[k]
		}
		x[i] /= s[i*n+i]
	}
	return x, true
}

// IsPhiParameter reports whether a trainable tensor's name is one of φ's (a or β, an
// adapter's own or phi_shared.*): the tensors phi.lr_scale applies to.
func IsPhiParameter(name string) bool {
	return strings.HasSuffix(name, ".phi.amplitude") || strings.HasSuffix(name, ".phi.bandwidth_raw") ||
		name == SharedPhiPrefix+".amplitude" || name == SharedPhiPrefix+".bandwidth_raw"
}
