package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"

	"github.com/sugarme/gotch/ts"
)

// Naive returns φ(m) built from libtorch ops broadcast over a trailing K
// axis: u = m[..., None] − g, t = c·softplus(β)·u, φ = Σ_k a_k f(t). Autograd
// differentiates it op by op and keeps several (…, K) intermediates alive
// until backward, so memory grows as O(numel(m)·K): it is the reference the
// fused op is tested and benchmarked against, not a training path.
func Naive(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64) (*ts.Tensor, error) {
	if err := validate(m, amplitude, bandwidthRaw, grid, basis, scale); err != nil {
		return nil, err
	}
	n := &naiveOps{}
	defer n.dropAll()
	mu := n.do(m.Unsqueeze(-1, false))
	u := n.do(mu.Sub(grid, false))
	b := n.do(bandwidthRaw.Softplus(false))
	sb := n.mulScalar(b, scale)
	t := n.do(u.Mul(sb, false))
	var f *ts.Tensor
	switch basis {
	case adapter.Sinc:
		f = n.do(t.Sinc(false))
	case adapter.Gaussian:
		f = n.do(n.do(n.do(t.Square(false)).Neg(false)).Exp(false))
	default:
		f = n.bspline(t)
	}
	af := n.do(f.Mul(amplitude, false))
	if n.err != nil {
		return nil, fmt.Errorf("phiop: naive %v: %w", basis, n.err)
	}
	y, err := af.SumDimIntlist([]int64{-1}, false, m.DType(), false)
	if err != nil {
		return nil, fmt.Errorf("phiop: naive %v: sum over K: %w", basis, err)
	}
	return y, nil
}

// naiveOps chains gotch ops: it remembers the first error (later steps are
// skipped) and every intermediate, which dropAll frees. Freeing the Go handles
// leaves autograd's saved copies alone.
type naiveOps struct {
	tmp []*ts.Tensor
	err error
}

// none stands in for a result after an error, so chained calls stay valid.
var none = ts.NewTensor()

func (n *naiveOps) do(t *ts.Tensor, err error) *ts.Tensor {
	if n.err != nil {
		if err == nil {
			n.tmp = append(n.tmp, t)
		}
		return none
	}
	if err != nil {
		n.err = err
		return none
	}
	n.tmp = append(n.tmp, t)
	return t
}

func (n *naiveOps) mulScalar(t *ts.Tensor, v float64) *ts.Tensor {
	if n.err != nil {
		return none
	}
	s := ts.FloatScalar(v)
	defer s.Drop()
	return n.do(t.MulScalar(s, false))
}

func (n *naiveOps) addScalar(t *ts.Tensor, v float64) *ts.Tensor {
	if n.err != nil {
		return none
	}
	s := ts.FloatScalar(v)
	defer s.Drop()
	return n.do(t.AddScalar(s, false))
}

// bspline is the cubic B-spline ((2−|t|)₊³ − 4(1−|t|)₊³)/6 from relu and pow.
func (n *naiveOps) bspline(t *ts.Tensor) *ts.Tensor {
	if n.err != nil {
		return none
	}
	three := ts.FloatScalar(3)
	defer three.Drop()
	negAbs := n.do(n.do(t.Abs(false)).Neg(false))
	outer := n.do(n.do(n.addScalar(negAbs, 2).Relu(false)).PowTensorScalar(three, false))
	inner := n.do(n.do(n.addScalar(negAbs, 1).Relu(false)).PowTensorScalar(three, false))
	diff := n.do(outer.Sub(n.mulScalar(inner, 4), false))
	return n.mulScalar(diff, 1.0/6.0)
}

func (n *naiveOps) dropAll() {
	for _, t := range n.tmp {
		_ = t.Drop()
	}
	n.tmp = nil
}
