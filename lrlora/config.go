package lrlora

import (
	"fmt"
	"math"
	"strings"

	"github.com/lrtrain/lrtrain/phiop"
)

// Method selects the adapter's transfer function φ (SPEC §1, "Variants").
type Method int

const (
	// LRLoRA is Learnable-Rank LoRA: φ(x) = Σ_k a_k f(b_k·(x − g_k)) with learned a, β.
	LRLoRA Method = iota
	// LoRA is plain LoRA (Hu et al. 2021): φ(x) = x, so ΔW = s·B·A exactly.
	LoRA
	// SineLoRA (Ji et al. 2025): φ(x) = sin(ω·x)/√d_in with a fixed frequency ω.
	SineLoRA
)

var methodNames = [...]string{LRLoRA: "lrlora", LoRA: "lora", SineLoRA: "sinelora"}

func (m Method) String() string {
	if m >= 0 && int(m) < len(methodNames) {
		return methodNames[m]
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ParseMethod accepts "lrlora" (also "lr-lora" and "", the default), "lora" and
// "sinelora" (also "sine-lora").
func ParseMethod(s string) (Method, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "lrlora", "lr-lora", "":
		return LRLoRA, nil
	case "lora":
		return LoRA, nil
	case "sinelora", "sine-lora":
		return SineLoRA, nil
	}
	return 0, fmt.Errorf("%w: method %q (want lrlora, lora or sinelora)", ErrConfig, s)
}

// GridKind places the K grid points g_k on [−L, L].
type GridKind int

const (
	// UniformGrid is g_k = −L + 2L(k−1)/(K−1), k = 1..K (SPEC §1).
	UniformGrid GridKind = iota
	// ChebyshevGrid uses the Chebyshev nodes of the first kind scaled to [−L, L],
	// g_k = −L·cos((2k−1)π/(2K)), k = 1..K, which are ascending and denser near ±L.
	ChebyshevGrid
)

var gridNames = [...]string{UniformGrid: "uniform", ChebyshevGrid: "chebyshev"}

func (g GridKind) String() string {
	if g >= 0 && int(g) < len(gridNames) {
		return gridNames[g]
	}
	return fmt.Sprintf("GridKind(%d)", int(g))
}

// ParseGrid accepts "uniform" (the default, also "") and "chebyshev".
func ParseGrid(s string) (GridKind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "uniform", "":
		return UniformGrid, nil
	case "chebyshev":
		return ChebyshevGrid, nil
	}
	return 0, fmt.Errorf("%w: grid %q (want uniform or chebyshev)", ErrConfig, s)
}

// Sharing says which φ tensors several adapters hold in common (the paper's
// cross-layer sharing ablation). Shared tensors live in a SharedPhi and are
// listed once, by SharedPhi.Tensors, not by each adapter.
type Sharing int

const (
	ShareNone      Sharing = iota // every adapter owns its a, β and grid (default)
	ShareGrid                     // the grid buffer is shared
	ShareBandwidth                // β (bandwidth_raw) and the grid are shared
	ShareAll                      // a, β and the grid are shared
)

var sharingNames = [...]string{ShareNone: "none", ShareGrid: "grid", ShareBandwidth: "bandwidth", ShareAll: "all"}

func (s Sharing) String() string {
	if s >= 0 && int(s) < len(sharingNames) {
		return sharingNames[s]
	}
	return fmt.Sprintf("Sharing(%d)", int(s))
}

// ParseSharing accepts none (also ""), grid, bandwidth and all.
func ParseSharing(s string) (Sharing, error) {
	for i, n := range sharingNames {
		if strings.EqualFold(strings.TrimSpace(s), n) {
			return Sharing(i), nil
		}
	}
	if strings.TrimSpace(s) == "" {
		return ShareNone, nil
	}
	return 0, fmt.Errorf("%w: sharing %q (want none, grid, bandwidth or all)", ErrConfig, s)
}

// Defaults of the paper (SPEC §1), used where a config field is left zero.
const (
	DefaultK         = 50
	DefaultL         = 3.0
	DefaultSineOmega = 200.0 // SineLoRA's frequency for LLM adapters (Ji et al. 2025)
)

// BandwidthRawInit is β's initial value ln(e − 1), so that b = softplus(β) = 1.
var BandwidthRawInit = math.Log(math.E - 1)

// TransferConfig describes the transfer function φ of an lrlora adapter.
// The zero value means the paper's defaults: K = 50, L = 3, uniform grid, sinc basis.
type TransferConfig struct {
	K     int         // number of basis functions (grid points); 0 means 50
	L     float64     // half-width of the grid interval [−L, L]; 0 means 3
	Grid  GridKind    // uniform (default) or chebyshev
	Basis phiop.Basis // phiop.Sinc (default), phiop.Gaussian or phiop.BSpline
	Share Sharing     // cross-layer sharing of φ tensors; see SharedPhi
}

// withDefaults fills zero fields with the defaults and validates the rest.
func (c TransferConfig) withDefaults() (TransferConfig, error) {
	if c.K == 0 {
		c.K = DefaultK
	}
	if c.L == 0 {
		c.L = DefaultL
	}
	if c.K < 2 {
		return c, fmt.Errorf("%w: K = %d, need at least 2 grid points", ErrConfig, c.K)
	}
	if !(c.L > 0) || math.IsInf(c.L, 0) {
		return c, fmt.Errorf("%w: L = %v, need a finite L > 0", ErrConfig, c.L)
	}
	if c.Grid != UniformGrid && c.Grid != ChebyshevGrid {
		return c, fmt.Errorf("%w: grid %v", ErrConfig, c.Grid)
	}
	if c.Basis != phiop.Sinc && c.Basis != phiop.Gaussian && c.Basis != phiop.BSpline {
		return c, fmt.Errorf("%w: basis %d", ErrConfig, int(c.Basis))
	}
	if c.Share < ShareNone || c.Share > ShareAll {
		return c, fmt.Errorf("%w: sharing %v", ErrConfig, c.Share)
	}
	return c, nil
}

// GridPoints returns g_1 < … < g_K for the config (after defaults).
func (c TransferConfig) GridPoints() ([]float64, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	g := make([]float64, c.K)
	for k := range g {
		switch c.Grid {
		case UniformGrid:
			g[k] = -c.L + 2*c.L*float64(k)/float64(c.K-1)
		case ChebyshevGrid:
			g[k] = -c.L * math.Cos(float64(2*k+1)*math.Pi/float64(2*c.K))
		}
	}
	return g, nil
}

// Scale is the factor phiop applies inside the basis, f(scale·b_k·(x − g_k)).
// Sinc and Gaussian use the SPEC §1 formulas as written (scale 1: sinc(b_k(x−g_k)),
// exp(−(b_k(x−g_k))²)). Cubic B-splines live "on the grid", so their argument is
// measured in grid spacings: scale = 1/h with h = 2L/(K−1) for the uniform grid and
// the mean spacing (g_K − g_1)/(K−1) for the Chebyshev grid.
func (c TransferConfig) Scale() (float64, error) {
	c, err := c.withDefaults()
	if err != nil {
		return 0, err
	}
	if c.Basis != phiop.BSpline {
		return 1, nil
	}
	g, err := c.GridPoints()
	if err != nil {
		return 0, err
	}
	h := (g[len(g)-1] - g[0]) / float64(len(g)-1)
	return 1 / h, nil
}

// Config configures one adapter (PEFT-style fields, SPEC §3).
type Config struct {
	Method  Method
	Rank    int     // r ≥ 1
	Alpha   float64 // α; 0 means 2r
	RSLoRA  bool    // scaling s = α/√r instead of α/r (rsLoRA, Kalajdzievski 2023)
	Dropout float64 // dropout probability on the adapter input, in [0, 1)

	Transfer  TransferConfig // φ for Method == LRLoRA
	SineOmega float64        // ω for Method == SineLoRA; 0 means 200
}

// withDefaults fills zero fields and validates.
func (c Config) withDefaults() (Config, error) {
	if c.Method < LRLoRA || c.Method > SineLoRA {
		return c, fmt.Errorf("%w: method %v", ErrConfig, c.Method)
	}
	if c.Rank < 1 {
		return c, fmt.Errorf("%w: rank %d, need r ≥ 1", ErrConfig, c.Rank)
	}
	if c.Alpha == 0 {
		c.Alpha = 2 * float64(c.Rank)
	}
	if math.IsNaN(c.Alpha) || math.IsInf(c.Alpha, 0) {
		return c, fmt.Errorf("%w: alpha %v", ErrConfig, c.Alpha)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return c, fmt.Errorf("%w: dropout %v, need 0 ≤ p < 1", ErrConfig, c.Dropout)
	}
	if c.SineOmega == 0 {
		c.SineOmega = DefaultSineOmega
	}
	var err error
	if c.Transfer, err = c.Transfer.withDefaults(); err != nil {
		return c, err
	}
	return c, nil
}

// Scaling returns s = α/r, or α/√r with rsLoRA (α defaults to 2r).
func (c Config) Scaling() (float64, error) {
	c, err := c.withDefaults()
	if err != nil {
		return 0, err
	}
	if c.RSLoRA {
		return c.Alpha / math.Sqrt(float64(c.Rank)), nil
	}
	return c.Alpha / float64(c.Rank), nil
}
