package model

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// SetFusedLoss makes Begin compute a causal LM's loss inside its head, without the
// B×T×V logits, when the Inputs carry Labels (0 turns it off; the default is off).
// chunk is the number of vocabulary rows projected onto at once; 0 chooses it: a
// chunk's logits hold max(N·H, 2²⁰) elements for N positions and hidden size H. Classifiers
// and networks without a frozen vocabulary projection ignore it.
//
// With it the pass holds, besides the hidden states, one chunk's logits at a time
// instead of the logits, their log-softmax and both their gradients. For the final
// norm's output hₙ (N×H) and its targets y (labels shifted by one, as CausalLMLoss
// shifts them) it goes through the rows of the projection W a chunk W_c at a time,
// keeping for each position a running maximum m of its logits, s = Σ e^(z−m) and
// acc = Σ e^(z−m)·W_v (an online softmax, rescaled by e^(m−m') when the maximum
// rises): z = hₙ·W_cᵀ is formed in float32, the target's logit z_y taken when y is in
// the chunk, and z is turned in place into e^(z−m'), whose row sums and product with
// W_c update s and acc. After the last chunk the summed loss is ℓ = Σ (m + log s −
// z_y) over the targets other than IgnoreIndex, and ∂loss/∂hₙ = G = acc/s − W_y
// (softmax(z)·W minus the target's row; zero on ignored positions). W is frozen, so
// nothing else needs z, and W is read a chunk of rows at a time: where the block hook
// is a RowReader (a sharded backbone), those rows, and the embeddings' rows of the
// batch's ids, are read from the ranks that hold them and the matrices are never
// gathered whole. The loss tensor the pass returns (Pass.LossSum) is
//
//	L = Σ hₙ⊙G − stopgrad(Σ hₙ⊙G) + ℓ
//
// whose value is ℓ exactly (the first two terms cancel to zero), and backward through
// it sends G, times the incoming gradient, into the final norm and the blocks below,
// which is the gradient libtorch's cross-entropy on the full logits gives, up to
// float32 rounding.
func (m *Model) SetFusedLoss(on bool, chunk int) {
	m.fused.on, m.fused.chunk = on, chunk
}

// FusedLoss reports SetFusedLoss's settings.
func (m *Model) FusedLoss() (on bool, chunk int) { return m.fused.on, m.fused.chunk }

// causalHead is a network whose head is a final norm and a frozen projection onto the
// vocabulary (the decoder).
type causalHead interface {
	finalNorm(s *scope, h *ts.Tensor) *ts.Tensor
	vocab() *Linear
}

// fusesLoss reports whether a training pass on in computes its loss in the head.
func (m *Model) fusesLoss(in Inputs) (bool, error) {
	if !m.fused.on || in.Labels == nil {
		return false, nil
	}
	h, ok := m.net.(causalHead)
	if !ok || h.vocab().adapter != nil || h.vocab().Weight == nil {
		return false, nil
	}
	if rg, err := h.vocab().Weight.RequiresGrad(); err != nil || rg {
		return false, err
	}
	ls, err := in.Labels.Size()
	if err != nil {
		return false, fmt.Errorf("model: labels: %w", err)
	}
	is, err := in.InputIDs.Size()
	if err != nil {
		return false, fmt.Errorf("model: input ids: %w", err)
	}
	if len(ls) != 2 || ls[0] != is[0] || ls[1] != is[1] || in.Labels.DType() != gotch.Int64 {
		return false, fmt.Errorf("%w: labels are %v of shape %v, input ids %v: want int64 of the same shape", ErrInput, in.Labels.DType(), ls, is)
	}
	return true, nil
}

// runFusedLoss is runHead for a pass that computes its loss in the head: it returns L
// (see SetFusedLoss), owned by the caller.
func (m *Model) runFusedLoss(ctx *fwdCtx, h *ts.Tensor) (*ts.Tensor, error) {
	head := m.net.(causalHead)
	s := newScope("fused causal LM loss")
	defer s.drop()
	ctx.at(m.net.numBlocks())
	hn := head.finalNorm(s, h)
	if !s.ok(hn) {
		return nil, s.err
	}
	x, err := hn.Detach(false)
	if x = s.track(x, err, "detach"); !s.ok(x) {
		return nil, s.err
	}
	v := head.vocab()
	w, err := newRowSource(v.Weight, ctx.rows)
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", s.what, err)
	}
	var b *rowSource
	if v.Bias != nil {
		if b, err = newRowSource(v.Bias, ctx.rows); err != nil {
			return nil, fmt.Errorf("model: %s: %w", s.what, err)
		}
	}
	var sum, grad *ts.Tensor
	err = tensorkit.WithGrad(false, func() error {
		var err error
		sum, grad, err = lossAndGrad(x, ctx.in.Labels, w, b, m.fused.chunk)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("model: %s: %w", s.what, err)
	}
	s.track(sum, nil, "")
	s.track(grad, nil, "")
	sur := s.sumProduct(hn, grad)
	if !s.ok(sur) {
		return nil, s.err
	}
	still, err := sur.Detach(false)
	if still = s.track(still, err, "detach"); !s.ok(still) {
		return nil, s.err
	}
	out := s.add(s.sub(sur, still), sum)
	if !s.ok(out) {
		return nil, s.err
	}
	return s.keep(out), nil
}

// lossAndGrad returns the summed next-token loss of x (B×T×H, the final norm's output,
// no autograd) against labels (B×T, unshifted) through the frozen projection whose
// weight rows w gives (and bias rows b, nil without a bias), and its gradient with
// respect to x (B×T×H, x's dtype), chunk rows of the vocabulary at a time.
func lossAndGrad(x, labels *ts.Tensor, w, b *rowSource, chunk int) (sum, grad *ts.Tensor, err error) {
	s := newScope("loss and gradient")
	defer s.drop()
	xs, err := x.Size()
	if err != nil {
		return nil, nil, err
	}
	bs, t, hid := xs[0], xs[1], xs[2]
	n, vocab := bs*t, w.shape[0]
	dev, err := x.Device()
	if err != nil {
		return nil, nil, err
	}
	// The target of position t is labels[t+1]; the last position of a row has none.
	none, err := ts.Full([]int64{bs, 1}, ts.IntScalar(IgnoreIndex), gotch.Int64, dev)
	none = s.track(none, err, "full")
	y := s.view(s.cat(1, s.narrow(labels, 1, 1, t-1), none), n)
	flat := s.view(s.contiguous(x), n, hid)
	valid := s.neScalar(y, IgnoreIndex)
	if !s.ok(y, flat, valid) {
		return nil, nil, s.err
	}
	safe, err := y.MaskedFill(s.not(valid), ts.IntScalar(0), false)
	safe = s.track(safe, err, "masked fill")
	keep := s.unsqueeze(s.toDType(valid, upcast(x.DType())), 1)
	if !s.ok(safe, keep) {
		return nil, nil, s.err
	}
	st := &softmaxState{dtype: upcast(x.DType())}
	defer st.drop()
	c := chunkRows(chunk, n, hid, vocab)
	for v0 := int64(0); v0 < vocab; v0 += c {
		k := min(c, vocab-v0)
		if err := st.add(flat, safe, w, b, v0, k); err != nil {
			return nil, nil, fmt.Errorf("vocabulary rows %d to %d: %w", v0, v0+k, err)
		}
	}
	// loss: Σ (m + log s − z_y) over the targets; gradient: (acc/s − W_y) on them.
	lse := s.add(st.m, s.log(st.s))
	per := s.mul(s.sub(lse, st.zy), keep)
	target := s.toDType(w.lookup(s, safe), st.dtype)
	g := s.mul(s.sub(s.div(st.acc, st.s), target), keep)
	if !s.ok(per, g) {
		return nil, nil, s.err
	}
	sum, err = per.Sum(st.dtype, false)
	if sum = s.track(sum, err, "sum"); !s.ok(sum) {
		return nil, nil, s.err
	}
	grad = s.view(s.toDType(g, x.DType()), bs, t, hid)
	if !s.ok(grad) {
		return nil, nil, s.err
	}
	return s.keep(sum), s.keep(grad), nil
}

// chunkRows is the number of vocabulary rows per chunk: chunk if set, else enough
// that a chunk's logits (N positions × rows) hold max(N·H, 2²⁰) elements — no more
// than the hidden states, or 4 MiB of float32 for short passes — at most the
// vocabulary.
func chunkRows(chunk int, n, hid, vocab int64) int64 {
	c := int64(chunk)
	if c <= 0 {
		c = max(hid, (1<<20+n-1)/n)
	}
	return max(min(c, vocab), 1)
}

// softmaxState is the running state of a log-softmax over the vocabulary taken a
// chunk of rows at a time (each position's running maximum m of the logits so far,
// Σ exp(z − m), Σ exp(z − m)·W_v and its target's logit), so that no chunk's logits
// outlive the chunk. Each is N×1 or N×H in dtype (float32, or float64 for float64
// models); nil until the first chunk.
type softmaxState struct {
	dtype     gotch.DType
	m, s, acc *ts.Tensor
	zy        *ts.Tensor
}

func (st *softmaxState) drop() {
	for _, t := range []*ts.Tensor{st.m, st.s, st.acc, st.zy} {
		if t != nil {
			t.Drop()
		}
	}
}

// add takes rows [v0, v0+k) of the vocabulary into the state: z = x·W_cᵀ (+ b_c) for
// the chunk, the targets' logits among them, then m' = max(m, max z), s' = s·e^(m−m')
// + Σ e^(z−m') and acc' = acc·e^(m−m') + e^(z−m')·W_c. x is N×H, y N target ids (0
// where ignored; masked later).
func (st *softmaxState) add(x, y *ts.Tensor, w, b *rowSource, v0, k int64) error {
	s := newScope("vocabulary chunk")
	defer s.drop()
	wc := w.rows(s, v0, k)
	var bc *ts.Tensor
	if b != nil {
		bc = b.rows(s, v0, k)
	}
	z := s.toDType(s.linear(x, wc, bc), st.dtype)
	// the targets in this chunk: z at y − v0 where v0 ≤ y < v0 + k
	rel := s.addInt(y, -v0)
	in := s.and(s.not(s.ltScalar(rel, 0)), s.ltScalar(rel, k))
	if !s.ok(z, rel, in) {
		return s.err
	}
	idx, err := rel.Clamp(ts.IntScalar(0), ts.IntScalar(k-1), false)
	idx = s.unsqueeze(s.track(idx, err, "clamp"), 1)
	zy := s.mul(s.gather(z, 1, idx), s.unsqueeze(s.toDType(in, st.dtype), 1))
	cm, err := z.Amax([]int64{1}, true, false)
	cm = s.track(cm, err, "amax")
	if !s.ok(zy, cm) {
		return s.err
	}
	next := cm
	if st.m != nil {
		next = s.maximum(st.m, cm)
	}
	if !s.ok(next) {
		return s.err
	}
	if err := expShifted(z, next); err != nil {
		return err
	}
	rs := s.sumRows(z)
	g := s.toDType(s.matmul(s.toDType(z, wc.DType()), wc), st.dtype)
	if !s.ok(rs, g) {
		return s.err
	}
	if st.m == nil { // the first chunk
		st.m, st.zy, st.s, st.acc = s.keep(next), s.keep(zy), s.keep(rs), s.keep(g)
		return nil
	}
	scale := s.exp(s.sub(st.m, next))
	if !s.ok(scale) {
		return s.err
	}
	for _, op := range []error{
		tensorkit.Done(st.zy.AddOut(st.zy, zy, false)),
		tensorkit.Done(st.s.MulOut(st.s, scale, false)),
		tensorkit.Done(st.s.AddOut(st.s, rs, false)),
		tensorkit.Done(st.acc.MulOut(st.acc, scale, false)),
		tensorkit.Done(st.acc.AddOut(st.acc, g, false)),
	} {
		if op != nil {
			return fmt.Errorf("update: %w", op)
		}
	}
	st.m.Drop()
	st.m = s.keep(next)
	return nil
}

// expShifted turns z into exp(z − m) in place (m broadcast along rows).
func expShifted(z, m *ts.Tensor) error {
	if err := tensorkit.Done(z.SubOut(z, m, false)); err != nil {
		return fmt.Errorf("sub: %w", err)
	}
	if err := tensorkit.Done(z.ExpOut(z, false)); err != nil {
		return fmt.Errorf("exp: %w", err)
	}
	return nil
}
