package lrlora

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/phiop"
)

func TestGridPoints(t *testing.T) {
	g, err := TransferConfig{}.GridPoints()
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
	c, err := TransferConfig{K: 5, L: 2, Grid: ChebyshevGrid}.GridPoints()
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
}

func TestBasisScale(t *testing.T) {
	for _, tc := range []struct {
		cfg  TransferConfig
		want float64
	}{
		{TransferConfig{}, 1},
		{TransferConfig{Basis: phiop.Gaussian}, 1},
		{TransferConfig{Basis: phiop.BSpline}, 49.0 / 6}, // 1/h, h = 2L/(K−1)
		{TransferConfig{Basis: phiop.BSpline, K: 5, L: 2, Grid: ChebyshevGrid}, 4 / (4 * math.Cos(math.Pi/10))},
	} {
		got, err := tc.cfg.Scale()
		if err != nil || math.Abs(got-tc.want) > 1e-14 {
			t.Errorf("%+v: scale %v (%v), want %v", tc.cfg, got, err, tc.want)
		}
	}
}

func TestParseAndValidate(t *testing.T) {
	if m, err := ParseMethod("sinelora"); err != nil || m != SineLoRA {
		t.Errorf("ParseMethod: %v %v", m, err)
	}
	if g, err := ParseGrid("chebyshev"); err != nil || g != ChebyshevGrid {
		t.Errorf("ParseGrid: %v %v", g, err)
	}
	if s, err := ParseSharing("bandwidth"); err != nil || s != ShareBandwidth {
		t.Errorf("ParseSharing: %v %v", s, err)
	}
	for _, bad := range []string{"dora"} {
		if _, err := ParseMethod(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseMethod(%q): %v", bad, err)
		}
	}
	for _, cfg := range []Config{
		{Rank: 0},
		{Rank: 2, Dropout: 1},
		{Rank: 2, Transfer: TransferConfig{K: 1}},
		{Rank: 2, Transfer: TransferConfig{L: -1}},
	} {
		if _, err := cfg.Scaling(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v accepted: %v", cfg, err)
		}
	}
	if s, _ := (Config{Rank: 8}).Scaling(); s != 2 {
		t.Errorf("default scaling α/r with α = 2r: %v, want 2", s)
	}
}

// Tensors lists the adapter's tensors in a fixed order with stable names, and the
// parameter count derived from it is r·(d_in + d_out) + 2K for LR-LoRA and
// r·(d_in + d_out) for LoRA and SineLoRA.
func TestTensorsAndParameterCount(t *testing.T) {
	lockThread(t)
	const dOut, dIn, r = 12, 20, 4
	l := newLayer(t, dOut, dIn, gotch.Float, 101)
	for _, tc := range []struct {
		cfg   Config
		want  int64
		names []string
	}{
		{Config{Method: LRLoRA, Rank: r}, r*(dIn+dOut) + 2*50,
			[]string{"lora_A", "lora_B", "phi.amplitude", "phi.bandwidth_raw", "phi.grid"}},
		{Config{Method: LRLoRA, Rank: r, Transfer: TransferConfig{K: 7}}, r*(dIn+dOut) + 2*7,
			[]string{"lora_A", "lora_B", "phi.amplitude", "phi.bandwidth_raw", "phi.grid"}},
		{Config{Method: LoRA, Rank: r}, r * (dIn + dOut), []string{"lora_A", "lora_B"}},
		{Config{Method: SineLoRA, Rank: r}, r * (dIn + dOut), []string{"lora_A", "lora_B"}},
	} {
		ad := newAdapter(t, l, tc.cfg, 102)
		n, err := ad.NumParameters()
		if err != nil || n != tc.want {
			t.Errorf("%v K=%d: %d parameters (%v), want %d", tc.cfg.Method, tc.cfg.Transfer.K, n, err, tc.want)
		}
		var names []string
		for _, nt := range ad.Tensors() {
			names = append(names, nt.Name[len(ad.Name())+1:])
			if nt.Trainable == (nt.Name == ad.Name()+".phi.grid") {
				t.Errorf("%s: trainable = %v", nt.Name, nt.Trainable)
			}
			rg, _ := nt.Tensor.RequiresGrad()
			if rg != nt.Trainable {
				t.Errorf("%s: requires grad %v, trainable %v", nt.Name, rg, nt.Trainable)
			}
		}
		if !slices.Equal(names, tc.names) {
			t.Errorf("%v: tensors %v, want %v", tc.cfg.Method, names, tc.names)
		}
		if got := len(ad.TrainableParameters()); got != len(tc.names)-btoi(tc.cfg.Method == LRLoRA) {
			t.Errorf("%v: %d trainable parameters", tc.cfg.Method, got)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// With sharing, adapters point at the SharedPhi's tensors and leave them out of
// their own lists, so every tensor is counted (and optimized, and saved) once.
func TestSharedPhi(t *testing.T) {
	lockThread(t)
	const dOut, dIn, r, k = 6, 5, 2, 9
	l := newLayer(t, dOut, dIn, gotch.Float, 111)
	for _, tc := range []struct {
		share      Sharing
		own        []string
		shared     []string
		adapterCnt int64
	}{
		{ShareGrid, []string{"lora_A", "lora_B", "phi.amplitude", "phi.bandwidth_raw"}, []string{"phi_shared.grid"}, r*(dIn+dOut) + 2*k},
		{ShareBandwidth, []string{"lora_A", "lora_B", "phi.amplitude"}, []string{"phi_shared.bandwidth_raw", "phi_shared.grid"}, r*(dIn+dOut) + k},
		{ShareAll, []string{"lora_A", "lora_B"}, []string{"phi_shared.amplitude", "phi_shared.bandwidth_raw", "phi_shared.grid"}, r * (dIn + dOut)},
	} {
		tcfg := TransferConfig{K: k, Share: tc.share}
		sp, err := NewSharedPhi(tcfg, gotch.Float, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{Method: LRLoRA, Rank: r, Transfer: tcfg}
		a1 := newAdapter(t, l, cfg, 1, WithSharedPhi(sp))
		a2 := newAdapter(t, l, cfg, 2, WithSharedPhi(sp))
		var own []string
		for _, nt := range a1.Tensors() {
			own = append(own, nt.Name[len(a1.Name())+1:])
		}
		var shared []string
		for _, nt := range sp.Tensors() {
			shared = append(shared, nt.Name)
		}
		if !slices.Equal(own, tc.own) || !slices.Equal(shared, tc.shared) {
			t.Errorf("%v: own %v shared %v", tc.share, own, shared)
		}
		if n, _ := a1.NumParameters(); n != tc.adapterCnt {
			t.Errorf("%v: adapter counts %d, want %d", tc.share, n, tc.adapterCnt)
		}
		if a1.phi.grid != a2.phi.grid || a1.phi.grid != sp.grid {
			t.Errorf("%v: adapters do not share the grid", tc.share)
		}
		if _, err := New("x", l.w0, nil, Config{Method: LRLoRA, Rank: r, Transfer: tcfg}, seeded(3)); !errors.Is(err, ErrConfig) {
			t.Errorf("%v without a SharedPhi: %v", tc.share, err)
		}
		t.Cleanup(sp.Close) // after the adapters' Close (cleanups run last-in first-out)
	}
}
