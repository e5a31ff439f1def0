package optim

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// ClipGradNorm scales the gradients of params so that their joint L2 norm is at
// most maxNorm, with torch.nn.utils.clip_grad_norm_'s semantics: total = the L2
// norm over all gradients taken together, coef = maxNorm/(total + 1e-6), and the
// gradients are multiplied by coef only when coef < 1 (torch clamps coef to 1).
// It returns total, the norm before clipping. Parameters without a gradient are
// ignored. The per-gradient norms are stacked on the gradients' device and read
// to the host at once (one device-to-host copy per call, however many
// parameters), then combined in float64 in parameter order.
//
// Unlike torch's default (error_if_nonfinite=False, which scales every gradient
// by NaN), a NaN or Inf total leaves the gradients untouched and returns
// ErrNonFiniteGrad with the total, so the caller can skip the step.
//
// (gotch's own Optimizer.ClipGradNorm deadlocks; this one does not use gotch's
// VarStore at all.)
func ClipGradNorm(params []ts.NamedTensor, maxNorm float64) (float64, error) {
	if !(maxNorm > 0) {
		return 0, fmt.Errorf("%w: max grad norm %v", ErrConfig, maxNorm)
	}
	var total float64
	err := tensorkit.NoGrad(func() error {
		var grads, norms []*ts.Tensor
		defer func() {
			for _, t := range append(grads, norms...) {
				t.Drop()
			}
		}()
		for _, p := range params {
			g, err := gradOf(p.Tensor)
			if err != nil {
				return fmt.Errorf("grad of %q: %w", p.Name, err)
			}
			if g == nil {
				continue
			}
			grads = append(grads, g)
			n, err := g.Norm(false)
			if err != nil {
				return fmt.Errorf("norm of %q: %w", p.Name, err)
			}
			norms = append(norms, n)
		}
		vals, err := readNorms(norms)
		if err != nil {
			return err
		}
		var sumSq float64
		for _, v := range vals {
			sumSq += v * v
		}
		total = math.Sqrt(sumSq)
		if math.IsNaN(total) || math.IsInf(total, 0) {
			return fmt.Errorf("%w: %v", ErrNonFiniteGrad, total)
		}
		coef := maxNorm / (total + 1e-6)
		if coef >= 1 {
			return nil
		}
		for _, g := range grads {
			if err := scaleInPlace(g, coef); err != nil {
				return fmt.Errorf("scale gradient: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return total, fmt.Errorf("optim: clip grad norm: %w", err)
	}
	return total, nil
}

// readNorms reads the per-gradient norms (0-dim tensors on one device) with one
// host read: stacked into one vector, in float64 when their dtypes differ.
func readNorms(norms []*ts.Tensor) ([]float64, error) {
	if len(norms) == 0 {
		return nil, nil
	}
	list := norms
	for _, n := range norms[1:] {
		if n.DType() == norms[0].DType() {
			continue
		}
		list = make([]*ts.Tensor, 0, len(norms))
		defer func() {
			for _, t := range list {
				t.Drop()
			}
		}()
		for _, n := range norms {
			d, err := n.Totype(gotch.Double, false)
			if err != nil {
				return nil, fmt.Errorf("norms to float64: %w", err)
			}
			list = append(list, d)
		}
		break
	}
	stacked, err := ts.Stack(list, 0)
	if err != nil {
		return nil, fmt.Errorf("stack %d norms: %w", len(list), err)
	}
	defer stacked.Drop()
	vals, err := tensorkit.Float64s(stacked)
	if err != nil {
		return nil, fmt.Errorf("read %d norms: %w", len(list), err)
	}
	return vals, nil
}
