package adapter

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// The defaults are the paper's, written against the numbers themselves.
func TestDefaultIsThePapers(t *testing.T) {
	s := Default()
	want := Spec{Method: "lrlora", R: 8, TargetModules: Targets{Names: []string{
		"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}},
		Phi: Phi{K: 50, L: 3, Grid: "uniform", Basis: "sinc", Share: "none",
			Init: "zero", InitValue: 0.01, LRScale: 1}, SineOmega: 200}
	if !equal(s, want) {
		t.Fatalf("Default() = %+v, want %+v", s, want)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("the default is invalid: %v", err)
	}
	if a := s.Resolved().Alpha; a != 16 {
		t.Errorf("resolved alpha %v, want 2r = 16", a)
	}
	s.TargetModules.Names[0] = "changed"
	if Default().TargetModules.Names[0] != "q_proj" {
		t.Error("Default shares its target list between calls")
	}
}

func equal(a, b Spec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// An explicit α is kept; 0 becomes 2r.
func TestResolvedAndScaling(t *testing.T) {
	s := Default()
	s.R, s.Alpha = 6, 1
	if s.Resolved().Alpha != 1 {
		t.Errorf("explicit alpha replaced: %v", s.Resolved().Alpha)
	}
	for _, c := range []struct {
		r      int
		alpha  float64
		rslora bool
		want   float64
	}{
		{8, 16, false, 2},   // α/r
		{16, 8, true, 2},    // α/√r
		{8, 0, false, 2},    // α = 2r
		{4, 0, true, 4},     // 2r/√r = 2√r
		{3, 1.5, false, .5}, // α/r
	} {
		s := Spec{R: c.r, Alpha: c.alpha, RSLoRA: c.rslora}
		if got := s.Scaling(); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("r %d α %v rslora %v: scaling %v, want %v", c.r, c.alpha, c.rslora, got, c.want)
		}
	}
	if !math.IsNaN(Spec{}.Scaling()) {
		t.Error("r = 0 has a scaling")
	}
}

func TestGridPoints(t *testing.T) {
	g, err := Default().Phi.GridPoints()
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 50 || g[0] != -3 || g[49] != 3 {
		t.Fatalf("default grid: %d points from %v to %v", len(g), g[0], g[len(g)-1])
	}
	for k := range g { // g_k = −L + 2L(k−1)/(K−1), 1-based k
		if want := -3 + 6*float64(k)/49; math.Abs(g[k]-want) > 1e-15 {
			t.Fatalf("g[%d] = %v, want %v", k, g[k], want)
		}
	}
	c, err := Phi{K: 5, L: 2, Grid: Chebyshev, Basis: Sinc, Share: ShareNone}.GridPoints()
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{ // −2·cos((2k−1)π/10)
		-2 * math.Cos(math.Pi/10), -2 * math.Cos(3*math.Pi/10), 0,
		2 * math.Cos(3*math.Pi/10), 2 * math.Cos(math.Pi/10),
	}
	for k := range c {
		if math.Abs(c[k]-want[k]) > 1e-15 {
			t.Fatalf("chebyshev grid %v, want %v", c, want)
		}
	}
	if _, err := (Phi{K: 1, L: 3, Grid: Uniform, Basis: Sinc, Share: ShareNone}).GridPoints(); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "adapter.phi.k") {
		t.Errorf("K = 1: %v", err)
	}
}

func TestBasisScale(t *testing.T) {
	phi := func(b Basis, k int, l float64, g Grid) Phi {
		return Phi{K: k, L: l, Grid: g, Basis: b, Share: ShareNone}
	}
	for _, tc := range []struct {
		phi  Phi
		want float64
	}{
		{Default().Phi, 1},
		{phi(Gaussian, 50, 3, Uniform), 1},
		{phi(BSpline, 50, 3, Uniform), 49.0 / 6}, // 1/h, h = 2L/(K−1)
		{phi(BSpline, 5, 2, Chebyshev), 4 / (4 * math.Cos(math.Pi/10))},
	} {
		got, err := tc.phi.BasisScale()
		if err != nil || math.Abs(got-tc.want) > 1e-14 {
			t.Errorf("%+v: scale %v (%v), want %v", tc.phi, got, err, tc.want)
		}
	}
}

// Every invalid setting is reported, in the order of the file's keys, by its path.
func TestProblemsNameEachKey(t *testing.T) {
	s := Default()
	s.Method, s.R, s.Dropout, s.SineOmega = "lr-lora", 0, 1, 0
	s.TargetModules = Targets{Regex: "(q"}
	s.ModulesToSave = []string{"score", " "}
	s.Phi = Phi{K: 1, L: math.Inf(1), Grid: "chebychev", Basis: "spline", Share: "everything"}
	var keys []string
	for _, p := range s.Problems() {
		keys = append(keys, p.Key)
	}
	want := []string{"adapter.method", "adapter.r", "adapter.dropout", "adapter.target_modules",
		"adapter.modules_to_save", "adapter.phi.k", "adapter.phi.l", "adapter.phi.grid",
		"adapter.phi.basis", "adapter.phi.share", "adapter.sine_omega"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v\nwant %v", keys, want)
	}
	err := s.Validate()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "`adapter.r` is 0; want an integer ≥ 1") ||
		!strings.Contains(err.Error(), `has an invalid regex "(q"`) {
		t.Errorf("err = %v", err)
	}
	// α: 0 means 2r; one that only follows a bad r is not reported again; others are.
	for _, c := range []struct {
		r     int
		alpha float64
		bad   bool
	}{{8, 0, false}, {0, 0, false}, {-1, -2, false}, {8, -1, true}, {8, math.NaN(), true}, {0, -1, true}} {
		s := Default()
		s.R, s.Alpha = c.r, c.alpha
		got := slices.ContainsFunc(s.Problems(), func(p Problem) bool { return p.Key == "adapter.alpha" })
		if got != c.bad {
			t.Errorf("r %d alpha %v: alpha reported %v, want %v", c.r, c.alpha, got, c.bad)
		}
	}
	p := Default()
	p.Phi.Share = "everything"
	if ps := p.Problems(); len(ps) != 1 || !slices.Equal(ps[0].Choices, []string{"none", "grid", "bandwidth", "all"}) ||
		ps[0].Want != "want none, grid, bandwidth or all" {
		t.Errorf("enumerated problem %+v", ps)
	}
}

func TestParseNames(t *testing.T) {
	if m, err := ParseMethod("sinelora"); err != nil || m != SineLoRA {
		t.Errorf("ParseMethod: %v %v", m, err)
	}
	if m, err := ParseMethod(" LR-LoRA "); err != nil || m != LRLoRA {
		t.Errorf("ParseMethod(LR-LoRA): %v %v", m, err)
	}
	if g, err := ParseGrid("chebyshev"); err != nil || g != Chebyshev {
		t.Errorf("ParseGrid: %v %v", g, err)
	}
	if s, err := ParseSharing("bandwidth"); err != nil || s != ShareBandwidth {
		t.Errorf("ParseSharing: %v %v", s, err)
	}
	for _, b := range Bases {
		got, err := ParseBasis(strings.ToUpper(string(b)))
		if err != nil || got != b {
			t.Errorf("ParseBasis(%q) = %v, %v; want %v", strings.ToUpper(string(b)), got, err, b)
		}
	}
	if got, err := ParseBasis(" b-spline "); err != nil || got != BSpline {
		t.Errorf("ParseBasis(b-spline) = %v, %v", got, err)
	}
	if _, err := ParseBasis("fourier"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "want sinc, gaussian or bspline") {
		t.Errorf("ParseBasis(fourier) error = %v, want ErrInvalid", err)
	}
	if _, err := ParseMethod("dora"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseMethod(dora): %v", err)
	}
}

// The JSON form is the one checkpoint manifests have always recorded, plus φ's variant
// keys: φ's keys flat beside the others, targets as one string, modules_to_save left out.
func TestJSONForm(t *testing.T) {
	const manifest = `{"method":"lrlora","r":8,"alpha":16,"rslora":false,"dropout":0,` +
		`"target_modules":"q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",` +
		`"k":50,"l":3,"grid":"uniform","basis":"sinc","share":"none","center":false,"residual":false,` +
		`"init":"zero","init_value":0.01,"lr_scale":1,"sine_omega":200}`
	s := Default().Resolved()
	s.ModulesToSave = []string{"score"}
	raw, err := json.Marshal(s)
	if err != nil || string(raw) != manifest {
		t.Fatalf("JSON %s (%v)\nwant %s", raw, err, manifest)
	}
	var back Spec
	if err := json.Unmarshal([]byte(manifest), &back); err != nil || !equal(back, Default().Resolved()) {
		t.Errorf("read back %+v, %v", back, err)
	}
}

// Every recorded setting but dropout shapes the adapter; Phi's keys are among them.
func TestShapingKeys(t *testing.T) {
	want := []string{"method", "r", "alpha", "rslora", "target_modules", "k", "l", "grid", "basis", "share",
		"center", "residual", "fixed_bandwidth", "sine_omega"}
	if got := ShapingKeys(); !slices.Equal(got, want) {
		t.Errorf("ShapingKeys() = %v, want %v", got, want)
	}
}
