package lrlora

import (
	"errors"
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// ErrNoConvergence reports a power iteration that did not settle.
var ErrNoConvergence = errors.New("lrlora: power iteration did not converge")

// StableRank returns sr(X) = ‖X‖_F² / σ_max(X)² for a 2-D X (docs/method.md §8), the
// paper's measure of an update's complexity; 1 ≤ sr(X) ≤ rank(X). It works on a
// detached float64 copy, so it neither records autograd nor loses precision for
// float32 or bf16 inputs. The zero matrix has stable rank 0 by convention (ΔW at
// initialisation), and NaN or Inf entries give ErrNonFinite.
//
// σ_max comes from libtorch's matrix 2-norm (linalg_norm with ord 2, an SVD);
// torch.linalg.svdvals is not usable through gotch on CPU because the binding
// always passes a `driver`, which libtorch accepts only for CUDA. If the SVD
// fails, σ_max falls back to a float64 power iteration with a convergence check.
func StableRank(x *ts.Tensor) (float64, error) {
	var sr float64
	err := tensorkit.NoGrad(func() error {
		shape, err := x.Size()
		if err != nil {
			return err
		}
		if len(shape) != 2 {
			return fmt.Errorf("%w: stable rank of a %d-D tensor, want a matrix", ErrShape, len(shape))
		}
		x64, err := x.Totype(gotch.Double, false)
		if err != nil {
			return err
		}
		defer x64.Drop()
		ok, err := allFinite(x64)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: stable rank input", ErrNonFinite)
		}
		fro, err := normOf(x64)
		if err != nil {
			return err
		}
		if fro == 0 {
			return nil
		}
		sigma, err := sigmaMaxSVD(x64)
		if err != nil {
			if sigma, err = sigmaMaxPower(x64, 10000, 1e-13); err != nil {
				return err
			}
		}
		sr = (fro / sigma) * (fro / sigma)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("lrlora: stable rank: %w", err)
	}
	return sr, nil
}

// normOf returns the 2-norm of all entries (the Frobenius norm for a matrix).
func normOf(t *ts.Tensor) (float64, error) {
	n, err := t.Norm(false)
	if err != nil {
		return 0, err
	}
	defer n.Drop()
	return tensorkit.Scalar(n)
}

// sigmaMaxSVD returns the largest singular value through linalg_norm(ord=2).
func sigmaMaxSVD(x *ts.Tensor) (float64, error) {
	n, err := x.LinalgNorm(ts.FloatScalar(2), []int64{-2, -1}, false, gotch.Invalid, false)
	if err != nil {
		return 0, err
	}
	defer n.Drop()
	return tensorkit.Scalar(n)
}

// sigmaMaxPower estimates σ_max(X) by power iteration on XᵀX in x's dtype (float64
// here): v ← XᵀX·v/‖XᵀX·v‖, σ = ‖X·v‖. The estimate rises monotonically to σ_max;
// it stops once two successive estimates differ by less than tol relative, and
// fails with ErrNoConvergence after maxIter iterations. The start vector is fixed
// (not random) so results are reproducible; its entries 1 + k/n avoid being
// orthogonal to the top singular vector of typical matrices.
func sigmaMaxPower(x *ts.Tensor, maxIter int, tol float64) (float64, error) {
	shape, err := x.Size()
	if err != nil {
		return 0, err
	}
	n := shape[1]
	start := make([]float64, n)
	for k := range start {
		start[k] = 1 + float64(k)/float64(n)
	}
	dev, err := x.Device()
	if err != nil {
		return 0, err
	}
	v, err := newTensor(start, []int64{n}, x.DType(), dev, false)
	if err != nil {
		return 0, err
	}
	xt, err := x.T(false)
	if err != nil {
		v.Drop()
		return 0, err
	}
	defer xt.Drop()
	prev := 0.0
	for it := 0; it < maxIter; it++ {
		u, err := x.Mv(v, false) // X·v
		if err != nil {
			v.Drop()
			return 0, err
		}
		vn, err := normOf(v)
		if err != nil {
			u.Drop()
			v.Drop()
			return 0, err
		}
		un, err := normOf(u)
		if err != nil {
			u.Drop()
			v.Drop()
			return 0, err
		}
		sigma := un / vn
		w, err := xt.Mv(u, false) // XᵀX·v
		u.Drop()
		v.Drop()
		if err != nil {
			return 0, err
		}
		wn, err := normOf(w)
		if err != nil || wn == 0 {
			w.Drop()
			if err == nil {
				err = fmt.Errorf("start vector in the null space")
			}
			return sigma, err
		}
		if v, err = mulScalar(w, 1/wn, true); err != nil {
			return 0, err
		}
		if it > 0 && math.Abs(sigma-prev) <= tol*sigma {
			v.Drop()
			return sigma, nil
		}
		prev = sigma
	}
	v.Drop()
	return prev, fmt.Errorf("%w after %d iterations (σ ≈ %g)", ErrNoConvergence, maxIter, prev)
}
