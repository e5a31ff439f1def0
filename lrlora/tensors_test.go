package lrlora

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
)

// An invalid spec is refused by New with an error wrapping ErrConfig and
// adapter.ErrInvalid that names the key.
func TestNewRefusesInvalidSpecs(t *testing.T) {
	lockThread(t)
	l := newLayer(t, 3, 4, gotch.Float, 5)
	for key, s := range map[string]adapter.Spec{
		"adapter.r":       spec(adapter.LRLoRA, 0),
		"adapter.dropout": spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.Dropout = 1 }),
		"adapter.phi.k":   spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.K = 1 }),
		"adapter.phi.l":   spec(adapter.LRLoRA, 2, func(s *adapter.Spec) { s.L = -1 }),
		"adapter.method":  spec("dora", 2),
	} {
		_, err := New("x", l.w0, nil, s, seeded(1))
		if !errors.Is(err, ErrConfig) || !errors.Is(err, adapter.ErrInvalid) || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: %v", key, err)
		}
	}
	if _, err := New("x", l.w0, nil, spec(adapter.LRLoRA, 2), nil); !errors.Is(err, ErrConfig) {
		t.Errorf("nil rng: %v", err)
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
		cfg   adapter.Spec
		want  int64
		names []string
	}{
		{spec(adapter.LRLoRA, r), r*(dIn+dOut) + 2*50,
			[]string{"lora_A", "lora_B", "phi.amplitude", "phi.bandwidth_raw", "phi.grid"}},
		{spec(adapter.LRLoRA, r, func(s *adapter.Spec) { s.K = 7 }), r*(dIn+dOut) + 2*7,
			[]string{"lora_A", "lora_B", "phi.amplitude", "phi.bandwidth_raw", "phi.grid"}},
		{spec(adapter.LoRA, r), r * (dIn + dOut), []string{"lora_A", "lora_B"}},
		{spec(adapter.SineLoRA, r), r * (dIn + dOut), []string{"lora_A", "lora_B"}},
	} {
		ad := newAdapter(t, l, tc.cfg, 102)
		n, err := ad.NumParameters()
		if err != nil || n != tc.want {
			t.Errorf("%v K=%d: %d parameters (%v), want %d", tc.cfg.Method, tc.cfg.K, n, err, tc.want)
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
		if got := len(ad.TrainableParameters()); got != len(tc.names)-btoi(tc.cfg.Method == adapter.LRLoRA) {
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
		share      adapter.Sharing
		own        []string
		shared     []string
		adapterCnt int64
	}{
		{adapter.ShareGrid, []string{"lora_A", "lora_B", "phi.amplitude", "phi.bandwidth_raw"}, []string{"phi_shared.grid"}, r*(dIn+dOut) + 2*k},
		{adapter.ShareBandwidth, []string{"lora_A", "lora_B", "phi.amplitude"}, []string{"phi_shared.bandwidth_raw", "phi_shared.grid"}, r*(dIn+dOut) + k},
		{adapter.ShareAll, []string{"lora_A", "lora_B"}, []string{"phi_shared.amplitude", "phi_shared.bandwidth_raw", "phi_shared.grid"}, r * (dIn + dOut)},
	} {
		cfg := spec(adapter.LRLoRA, r, func(s *adapter.Spec) { s.K, s.Share = k, tc.share })
		tcfg := cfg.Phi
		sp, err := NewSharedPhi(tcfg, gotch.Float, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
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
		if _, err := New("x", l.w0, nil, cfg, seeded(3)); !errors.Is(err, ErrConfig) {
			t.Errorf("%v without a SharedPhi: %v", tc.share, err)
		}
		t.Cleanup(sp.Close) // after the adapters' Close (cleanups run last-in first-out)
	}
}
