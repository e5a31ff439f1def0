package evaluate

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/phiop"
)

// AdapterStats is what one adapter learned: the stable ranks and singular values of its
// update ΔW = s·φ(B·A) next to those of B·A (the update plain LoRA makes with the same
// factors), and φ sampled on a grid.
type AdapterStats struct {
	Name   string
	Method adapter.Method
	// SRDelta and SRBA are the stable ranks ‖X‖²_F/σ²_max (lrlora.StableRank; 0 for a
	// zero matrix).
	SRDelta, SRBA float64
	// SigmaDelta and SigmaBA are all singular values, descending, from a float64 SVD.
	SigmaDelta, SigmaBA []float64
	// NormDelta is ‖ΔW‖_F.
	NormDelta float64
	// PhiX and PhiY sample φ (without the scale s) on [−L−1, L+1] for LR-LoRA
	// adapters; nil for LoRA and SineLoRA.
	PhiX, PhiY []float64
}

// DefaultPhiPoints is how many points AnalyzeAdapters samples φ at.
const DefaultPhiPoints = 241

// AnalyzeOptions configure AnalyzeAdapters.
type AnalyzeOptions struct {
	// PhiPoints is the number of φ samples; 0 means DefaultPhiPoints.
	PhiPoints int
	// Extra holds the tensors of a lrlora.SharedPhi (phi_shared.*), which adapters
	// under cross-layer sharing use but do not list.
	Extra []param.Tensor
}

// AnalyzeAdapters computes AdapterStats for every adapter of m, in module order. ΔW
// comes from Adapter.DeltaWeight, B·A from the adapter's own lora_A and lora_B; both
// are copied to float64 before their SVD (torch.svd without U and V, which works on
// libtorch's CPU build where linalg_svdvals does not).
func AnalyzeAdapters(m *model.Model, o AnalyzeOptions) ([]AdapterStats, error) {
	ads := m.Adapters()
	if len(ads) == 0 {
		return nil, fmt.Errorf("%w: the model has no adapters", ErrEmpty)
	}
	points := o.PhiPoints
	if points <= 0 {
		points = DefaultPhiPoints
	}
	var out []AdapterStats
	for _, ad := range ads {
		st, err := analyze(ad, points, o.Extra)
		if err != nil {
			return nil, fmt.Errorf("evaluate: analyze %s: %w", ad.Name(), err)
		}
		out = append(out, st)
	}
	return out, nil
}

func analyze(ad *lrlora.Adapter, points int, extra []param.Tensor) (AdapterStats, error) {
	st := AdapterStats{Name: ad.Name(), Method: ad.Spec().Method}
	err := tensorkit.NoGrad(func() error {
		dw, err := ad.DeltaWeight()
		if err != nil {
			return err
		}
		defer dw.Drop()
		ba, err := productBA(ad)
		if err != nil {
			return err
		}
		defer ba.Drop()
		if st.SRDelta, err = lrlora.StableRank(dw); err != nil {
			return err
		}
		if st.SRBA, err = lrlora.StableRank(ba); err != nil {
			return err
		}
		if st.SigmaDelta, err = SingularValues(dw); err != nil {
			return err
		}
		if st.SigmaBA, err = SingularValues(ba); err != nil {
			return err
		}
		for _, s := range st.SigmaDelta {
			st.NormDelta += s * s
		}
		st.NormDelta = sqrt(st.NormDelta)
		if st.Method == adapter.LRLoRA {
			st.PhiX, st.PhiY, err = SamplePhi(ad, extra, points)
		}
		return err
	})
	return st, err
}

// productBA is B·A from the adapter's lora_B and lora_A.
func productBA(ad *lrlora.Adapter) (*ts.Tensor, error) {
	a, okA := find(ad.Tensors(), ad.Name()+".lora_A")
	b, okB := find(ad.Tensors(), ad.Name()+".lora_B")
	if !okA || !okB {
		return nil, fmt.Errorf("adapter lists no lora_A/lora_B")
	}
	return b.Mm(a, false)
}

func find(list []param.Tensor, name string) (*ts.Tensor, bool) {
	for _, nt := range list {
		if nt.Name == name {
			return nt.Tensor, true
		}
	}
	return nil, false
}

// SingularValues returns the singular values of the matrix x, descending, computed in
// float64 on a detached copy (torch.svd with compute_uv off).
func SingularValues(x *ts.Tensor) ([]float64, error) {
	var out []float64
	err := tensorkit.NoGrad(func() error {
		x64, err := x.Totype(gotch.Double, false)
		if err != nil {
			return err
		}
		defer x64.Drop()
		u, s, v, err := x64.Svd(true, false, false)
		if err != nil {
			return fmt.Errorf("svd: %w", err)
		}
		u.Drop()
		v.Drop()
		defer s.Drop()
		out, err = tensorkit.Float64s(s)
		return err
	})
	return out, err
}

// SamplePhi evaluates an LR-LoRA adapter's φ (without the scale s) at n points spread
// evenly over [−L−1, L+1], through the same fused op (phiop.ApplyVariant, centred or
// residual as the spec says) that DeltaWeight uses, on a 1-D tensor of the points. φ tensors the adapter does not own (cross-layer
// sharing) are taken from extra (phi_shared.*).
func SamplePhi(ad *lrlora.Adapter, extra []param.Tensor, n int) (xs, ys []float64, err error) {
	cfg := ad.Spec()
	if cfg.Method != adapter.LRLoRA {
		return nil, nil, fmt.Errorf("%w: %s is a %v adapter, φ is LR-LoRA's", ErrTask, ad.Name(), cfg.Method)
	}
	if n < 2 {
		return nil, nil, fmt.Errorf("%w: %d φ points", ErrConfig, n)
	}
	var tensors [3]*ts.Tensor
	for i, part := range []string{"amplitude", "bandwidth_raw", "grid"} {
		t, ok := find(ad.Tensors(), ad.Name()+".phi."+part)
		if !ok {
			t, ok = find(extra, lrlora.SharedPhiPrefix+"."+part)
		}
		if !ok {
			return nil, nil, fmt.Errorf("%w: %s: no phi.%s (shared φ tensors must be passed as extra)", ErrConfig, ad.Name(), part)
		}
		tensors[i] = t
	}
	scale, err := cfg.Phi.BasisScale()
	if err != nil {
		return nil, nil, err
	}
	lo, hi := -cfg.L-1, cfg.L+1
	xs = make([]float64, n)
	for i := range xs {
		xs[i] = lo + (hi-lo)*float64(i)/float64(n-1)
	}
	err = tensorkit.NoGrad(func() error {
		x, err := ts.OfSlice(xs)
		if err != nil {
			return err
		}
		defer x.Drop()
		xt := x
		if dt := tensors[0].DType(); dt != gotch.Double {
			if xt, err = x.Totype(dt, false); err != nil {
				return err
			}
			defer xt.Drop()
		}
		v := phiop.Variant{Center: cfg.Center, Residual: cfg.Residual} // the adapter's own φ (docs/method.md §10)
		phi, err := phiop.ApplyVariant(xt, tensors[0], tensors[1], tensors[2], cfg.Basis, scale, v)
		if err != nil {
			return err
		}
		defer phi.Drop()
		ys, err = float64s(phi)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("evaluate: sample φ of %s: %w", ad.Name(), err)
	}
	return xs, ys, nil
}
