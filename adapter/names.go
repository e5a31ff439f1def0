package adapter

import (
	"fmt"
	"slices"
	"strings"
)

// Method selects the adapter's transfer function φ (docs/method.md §1, §5).
type Method string

const (
	// LRLoRA is Learnable-Rank LoRA: φ(x) = Σ_k a_k f(c·b_k·(x − g_k)) with learned a, β.
	LRLoRA Method = "lrlora"
	// LoRA is plain LoRA (Hu et al.): φ(x) = x, so ΔW = s·B·A exactly.
	LoRA Method = "lora"
	// SineLoRA (Ji et al. 2025): φ(x) = sin(ω·x)/√d_in with a fixed frequency ω.
	SineLoRA Method = "sinelora"
)

// Grid places the K grid points g_k on [−L, L] (docs/method.md §3).
type Grid string

const (
	// Uniform is g_k = −L + 2L(k−1)/(K−1), k = 1..K.
	Uniform Grid = "uniform"
	// Chebyshev is the Chebyshev nodes of the first kind scaled to [−L, L],
	// g_k = −L·cos((2k−1)π/(2K)), k = 1..K: ascending and denser near ±L.
	Chebyshev Grid = "chebyshev"
)

// Basis is the function f in φ(x) = Σ_k a_k f(c·b_k·(x − g_k)) (docs/method.md §2).
type Basis string

const (
	// Sinc is f(t) = sin(πt)/(πt), f(0) = 1 (the paper's).
	Sinc Basis = "sinc"
	// Gaussian is f(t) = exp(−t²).
	Gaussian Basis = "gaussian"
	// BSpline is the cubic B-spline kernel with support [−2, 2], measured in grid
	// spacings (see Phi.BasisScale).
	BSpline Basis = "bspline"
)

// Sharing says which φ tensors all adapters of a model hold in common (the paper's
// cross-layer sharing ablation, docs/method.md §5).
type Sharing string

const (
	ShareNone      Sharing = "none"      // every adapter owns its a, β and grid
	ShareGrid      Sharing = "grid"      // the grid buffer is shared
	ShareBandwidth Sharing = "bandwidth" // β (bandwidth_raw) and the grid are shared
	ShareAll       Sharing = "all"       // a, β and the grid are shared
)

// String returns the name, as the config file writes it.
func (m Method) String() string { return string(m) }

// String returns the name, as the config file writes it.
func (g Grid) String() string { return string(g) }

// String returns the name, as the config file writes it.
func (b Basis) String() string { return string(b) }

// String returns the name, as the config file writes it.
func (s Sharing) String() string { return string(s) }

// SharesGrid reports whether s puts the grid in common (grid, bandwidth, all).
func (s Sharing) SharesGrid() bool { return s == ShareGrid || s == ShareBandwidth || s == ShareAll }

// SharesBandwidth reports whether s puts β in common (bandwidth, all).
func (s Sharing) SharesBandwidth() bool { return s == ShareBandwidth || s == ShareAll }

// SharesAmplitude reports whether s puts a in common (all).
func (s Sharing) SharesAmplitude() bool { return s == ShareAll }

// The accepted values of each enumerated setting, in the order messages list them.
var (
	Methods  = []Method{LRLoRA, LoRA, SineLoRA}
	Grids    = []Grid{Uniform, Chebyshev}
	Bases    = []Basis{Sinc, Gaussian, BSpline}
	Sharings = []Sharing{ShareNone, ShareGrid, ShareBandwidth, ShareAll}
)

// Names returns the accepted values as strings.
func Names[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// aliases are spellings the Parse functions also accept (never the spec itself).
var aliases = map[string]string{"lr-lora": "lrlora", "sine-lora": "sinelora", "b-spline": "bspline"}

// parseName reads a name typed by a person (a flag, an experiment's list):
// case-insensitive, surrounding spaces ignored, a few hyphenated spellings accepted.
func parseName[T ~string](what, s string, values []T) (T, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	if a, ok := aliases[name]; ok {
		name = a
	}
	if i := slices.Index(values, T(name)); i >= 0 {
		return values[i], nil
	}
	return "", fmt.Errorf("%w: %s %q (want %s)", ErrInvalid, what, s, orList(Names(values)))
}

// ParseMethod reads lrlora (also lr-lora), lora or sinelora (also sine-lora), in any case.
func ParseMethod(s string) (Method, error) { return parseName("method", s, Methods) }

// ParseGrid reads uniform or chebyshev, in any case.
func ParseGrid(s string) (Grid, error) { return parseName("grid", s, Grids) }

// ParseBasis reads sinc, gaussian or bspline (also b-spline), in any case.
func ParseBasis(s string) (Basis, error) { return parseName("basis", s, Bases) }

// ParseSharing reads none, grid, bandwidth or all, in any case.
func ParseSharing(s string) (Sharing, error) { return parseName("sharing", s, Sharings) }

// orList joins names as "a, b or c".
func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
