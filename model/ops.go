package model

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// scope runs a sequence of tensor ops, remembers the first error and every
// intermediate it created, and frees the intermediates in drop. Once an op has
// failed every later op is skipped and returns nil, so model code reads as a
// straight line of ops followed by one error check:
//
//	s := newScope("attention")
//	defer s.drop()
//	q := s.linear(x, w, b)
//	q = s.view(q, b, t, h, d)
//	...
//	if s.err != nil { return nil, s.err }
//	return s.keep(out), nil
//
// Inputs are never dropped by ops; keep takes a result out of the scope so that
// drop leaves it alive.
type scope struct {
	what string
	tmp  []*ts.Tensor
	err  error
	// copyFrozen makes frozen return copies (fwdCtx.copyFrozen).
	copyFrozen bool
}

func newScope(what string) *scope { return &scope{what: what} }

// track records the result of an op.
func (s *scope) track(t *ts.Tensor, err error, op string) *ts.Tensor {
	if err != nil {
		if s.err == nil {
			s.err = fmt.Errorf("model: %s: %s: %w", s.what, op, err)
		}
		return nil
	}
	s.tmp = append(s.tmp, t)
	return t
}

// ok reports whether every op so far succeeded and all given tensors are non-nil.
func (s *scope) ok(ts ...*ts.Tensor) bool {
	if s.err != nil {
		return false
	}
	for _, t := range ts {
		if t == nil {
			s.err = fmt.Errorf("model: %s: nil tensor", s.what)
			return false
		}
	}
	return true
}

// fail records err (wrapped with the scope's name) unless an error is already recorded.
func (s *scope) fail(err error) {
	if s.err == nil && err != nil {
		s.err = fmt.Errorf("model: %s: %w", s.what, err)
	}
}

// keep removes t from the scope so that drop does not free it.
func (s *scope) keep(t *ts.Tensor) *ts.Tensor {
	for i := len(s.tmp) - 1; i >= 0; i-- {
		if s.tmp[i] == t {
			s.tmp = append(s.tmp[:i], s.tmp[i+1:]...)
			break
		}
	}
	return t
}

// release frees t now (it must belong to the scope); used for large intermediates.
func (s *scope) release(t *ts.Tensor) {
	if t == nil {
		return
	}
	s.keep(t)
	t.Drop()
}

// drop frees every intermediate still held.
func (s *scope) drop() {
	for _, t := range s.tmp {
		t.Drop()
	}
	s.tmp = nil
}

func (s *scope) linear(x, w, b *ts.Tensor) *ts.Tensor {
	if !s.ok(x, w) {
		return nil
	}
	if b == nil {
		u := ts.NewTensor() // undefined tensor: torch::linear's "no bias"
		defer u.Drop()
		b = u
	}
	out, err := ts.Linear(x, w, b)
	return s.track(out, err, "linear")
}

func (s *scope) matmul(a, b *ts.Tensor) *ts.Tensor {
	if !s.ok(a, b) {
		return nil
	}
	out, err := a.Matmul(b, false)
	return s.track(out, err, "matmul")
}

func (s *scope) add(a, b *ts.Tensor) *ts.Tensor {
	if !s.ok(a, b) {
		return nil
	}
	out, err := a.Add(b, false)
	return s.track(out, err, "add")
}

func (s *scope) sub(a, b *ts.Tensor) *ts.Tensor {
	if !s.ok(a, b) {
		return nil
	}
	out, err := a.Sub(b, false)
	return s.track(out, err, "sub")
}

// frozen returns the frozen tensor w for an op whose autograd node saves it: w itself,
// or in a pass whose block graphs outlive the block hook's release of the weights
// (SetRegather) an exact copy (w·1) that the graph can keep.
func (s *scope) frozen(w *ts.Tensor) *ts.Tensor {
	if !s.copyFrozen || !s.ok(w) {
		return w
	}
	return s.mulScalar(w, 1)
}

func (s *scope) mul(a, b *ts.Tensor) *ts.Tensor {
	if !s.ok(a, b) {
		return nil
	}
	out, err := a.Mul(b, false)
	return s.track(out, err, "mul")
}

// sumProduct is Σ a⊙b, a scalar of a's dtype: backward of it sends b into a.
func (s *scope) sumProduct(a, b *ts.Tensor) *ts.Tensor {
	dot := s.mul(a, b)
	if !s.ok(dot) {
		return nil
	}
	sum, err := dot.Sum(dot.DType(), false)
	return s.track(sum, err, "sum")
}

func (s *scope) mulScalar(a *ts.Tensor, v float64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.MulScalar(ts.FloatScalar(v), false)
	return s.track(out, err, "mul scalar")
}

func (s *scope) addScalar(a *ts.Tensor, v float64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.AddScalar(ts.FloatScalar(v), false)
	return s.track(out, err, "add scalar")
}

func (s *scope) neg(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Neg(false)
	return s.track(out, err, "neg")
}

func (s *scope) view(a *ts.Tensor, shape ...int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Reshape(shape, false)
	return s.track(out, err, fmt.Sprintf("reshape to %v", shape))
}

func (s *scope) transpose(a *ts.Tensor, d0, d1 int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Transpose(d0, d1, false)
	return s.track(out, err, "transpose")
}

func (s *scope) contiguous(a *ts.Tensor) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Contiguous(false)
	return s.track(out, err, "contiguous")
}

func (s *scope) narrow(a *ts.Tensor, dim, start, length int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Narrow(dim, start, length, false)
	return s.track(out, err, "narrow")
}

func (s *scope) selectAt(a *ts.Tensor, dim, index int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Select(dim, index, false)
	return s.track(out, err, "select")
}

func (s *scope) unsqueeze(a *ts.Tensor, dim int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Unsqueeze(dim, false)
	return s.track(out, err, "unsqueeze")
}

func (s *scope) expand(a *ts.Tensor, shape ...int64) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	out, err := a.Expand(shape, false, false)
	return s.track(out, err, "expand")
}

func (s *scope) cat(dim int64, parts ...*ts.Tensor) *ts.Tensor {
	if !s.ok(parts...) {
		return nil
	}
	out, err := ts.Cat(parts, dim)
	return s.track(out, err, "cat")
}

func (s *scope) toDType(a *ts.Tensor, dt gotch.DType) *ts.Tensor {
	if !s.ok(a) {
		return nil
	}
	if a.DType() == dt {
		out, err := a.ShallowClone()
		return s.track(out, err, "shallow clone")
	}
	out, err := a.Totype(dt, false)
	return s.track(out, err, fmt.Sprintf("cast to %v", dt))
}
