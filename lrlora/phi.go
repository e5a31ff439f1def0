package lrlora

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/param"
)

// BandwidthRawInit is β's initial value ln(e − 1), so that b = softplus(β) = 1.
var BandwidthRawInit = math.Log(math.E - 1)

// phiTensors are the transfer-function tensors (docs/method.md §1): amplitudes a (K, init 0,
// trained), raw bandwidths β (K, init ln(e−1) so b = softplus(β) = 1, trained unless
// phi.fixed_bandwidth) and
// the grid g (K, a buffer: not trained, but saved). Any of them may belong to a
// SharedPhi instead of the adapter; the own* flags say which ones the adapter owns.
type phiTensors struct {
	amplitude, bandwidthRaw, grid       *ts.Tensor
	ownAmplitude, ownBandwidth, ownGrid bool
}

// newPhiTensor creates one φ tensor of length K: "amplitude", "bandwidth_raw" or "grid".
func newPhiTensor(kind string, cfg adapter.Phi, dtype gotch.DType, dev gotch.Device) (*ts.Tensor, error) {
	vals := make([]float64, cfg.K)
	trainable := true
	switch kind {
	case "amplitude":
		// phi.init: a = 0 (the paper's, φ ≡ 0 and ΔW = 0 at initialisation), small or identity.
		a, err := InitialAmplitudes(cfg)
		if err != nil {
			return nil, err
		}
		vals = a
	case "bandwidth_raw":
		for k := range vals {
			vals[k] = BandwidthRawInit
		}
		trainable = !cfg.FixedBandwidth // phi.fixed_bandwidth: β stays a buffer at b = 1
	case "grid":
		g, err := cfg.GridPoints()
		if err != nil {
			return nil, err
		}
		vals, trainable = g, false
	default:
		panic("lrlora: unknown φ tensor " + kind) // programmer error
	}
	t, err := newTensor(vals, []int64{int64(cfg.K)}, dtype, dev, trainable)
	if err != nil {
		return nil, fmt.Errorf("lrlora: create phi.%s: %w", kind, err)
	}
	return t, nil
}

// SharedPhi holds the φ tensors that several adapters share (the paper's
// cross-layer sharing ablation, docs/method.md §5): with adapter.ShareGrid the grid,
// with ShareBandwidth β and the grid, with ShareAll a, β and the grid. Adapters
// created WithSharedPhi point at these tensors and leave them out of their own
// Tensors list; SharedPhi.Tensors lists them once under the prefix "phi_shared".
// Create one per model, close it after the adapters.
type SharedPhi struct {
	cfg                           adapter.Phi
	dtype                         gotch.DType
	device                        gotch.Device
	amplitude, bandwidthRaw, grid *ts.Tensor // nil where not shared
}

// SharedPhiPrefix names the shared φ tensors: phi_shared.amplitude, phi_shared.bandwidth_raw, phi_shared.grid.
const SharedPhiPrefix = "phi_shared"

// NewSharedPhi creates the shared φ tensors that cfg.Share asks for, with the
// given parameter dtype (use float32 unless the backbone is float64) and device.
func NewSharedPhi(cfg adapter.Phi, dtype gotch.DType, dev gotch.Device) (*SharedPhi, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lrlora: shared φ: %w: %w", ErrConfig, err)
	}
	if cfg.Share == adapter.ShareNone {
		return nil, fmt.Errorf("%w: NewSharedPhi with sharing %q", ErrConfig, cfg.Share)
	}
	s := &SharedPhi{cfg: cfg, dtype: dtype, device: dev}
	make1 := func(kind string) (*ts.Tensor, error) { return newPhiTensor(kind, cfg, dtype, dev) }
	var err error
	if s.grid, err = make1("grid"); err != nil {
		return nil, err
	}
	if cfg.Share.SharesBandwidth() {
		if s.bandwidthRaw, err = make1("bandwidth_raw"); err != nil {
			s.Close()
			return nil, err
		}
	}
	if cfg.Share.SharesAmplitude() {
		if s.amplitude, err = make1("amplitude"); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Tensors lists the shared tensors in the adapter order (amplitude, bandwidth_raw, grid).
func (s *SharedPhi) Tensors() []param.Tensor {
	var out []param.Tensor
	if s.amplitude != nil {
		out = append(out, param.Tensor{Name: SharedPhiPrefix + ".amplitude", Tensor: s.amplitude, Trainable: true})
	}
	if s.bandwidthRaw != nil {
		out = append(out, param.Tensor{Name: SharedPhiPrefix + ".bandwidth_raw", Tensor: s.bandwidthRaw, Trainable: !s.cfg.FixedBandwidth})
	}
	if s.grid != nil {
		out = append(out, param.Tensor{Name: SharedPhiPrefix + ".grid", Tensor: s.grid, Trainable: false})
	}
	return out
}

// Close frees the shared tensors; adapters that point at them must not be used afterwards.
func (s *SharedPhi) Close() {
	for _, t := range []*ts.Tensor{s.amplitude, s.bandwidthRaw, s.grid} {
		if t != nil {
			t.Drop()
		}
	}
	s.amplitude, s.bandwidthRaw, s.grid = nil, nil, nil
}

// newPhiTensors builds an adapter's φ tensors, taking shared ones from shared
// (which may be nil only when cfg.Share is ShareNone).
func newPhiTensors(cfg adapter.Phi, shared *SharedPhi, dtype gotch.DType, dev gotch.Device) (phiTensors, error) {
	var p phiTensors
	if cfg.Share != adapter.ShareNone {
		if shared == nil {
			return p, fmt.Errorf("%w: sharing %q needs a SharedPhi (WithSharedPhi)", ErrConfig, cfg.Share)
		}
		if shared.cfg != cfg {
			return p, fmt.Errorf("%w: SharedPhi was made for %+v, adapter wants %+v", ErrConfig, shared.cfg, cfg)
		}
		if shared.dtype != dtype || !sameDevice(shared.device, dev) {
			return p, fmt.Errorf("%w: SharedPhi is %v on %v, adapter parameters are %v on %v",
				ErrConfig, shared.dtype, shared.device, dtype, dev)
		}
		p.amplitude, p.bandwidthRaw, p.grid = shared.amplitude, shared.bandwidthRaw, shared.grid
	}
	var err error
	if p.amplitude == nil {
		if p.amplitude, err = newPhiTensor("amplitude", cfg, dtype, dev); err != nil {
			return p, err
		}
		p.ownAmplitude = true
	}
	if p.bandwidthRaw == nil {
		if p.bandwidthRaw, err = newPhiTensor("bandwidth_raw", cfg, dtype, dev); err != nil {
			p.drop()
			return p, err
		}
		p.ownBandwidth = true
	}
	if p.grid == nil {
		if p.grid, err = newPhiTensor("grid", cfg, dtype, dev); err != nil {
			p.drop()
			return p, err
		}
		p.ownGrid = true
	}
	return p, nil
}

// drop frees the tensors the adapter owns.
func (p *phiTensors) drop() {
	if p.ownAmplitude && p.amplitude != nil {
		p.amplitude.Drop()
	}
	if p.ownBandwidth && p.bandwidthRaw != nil {
		p.bandwidthRaw.Drop()
	}
	if p.ownGrid && p.grid != nil {
		p.grid.Drop()
	}
	*p = phiTensors{}
}
