package model

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// SetFusedLoss makes Begin compute a causal LM's loss inside its head, without the
// B×T×V logits, when the Inputs carry Labels (0 turns it off; the default is off).
// chunk is the number of token positions projected onto the vocabulary at once; 0
// chooses it: a chunk's logits hold no more elements than the pass's hidden states
// (N·H/V positions for N positions, hidden size H and vocabulary V), and at least 32
// positions. Classifiers and networks without a frozen vocabulary projection ignore
// it.
//
// With it the pass holds, besides the hidden states, one chunk's logits at a time
// instead of the logits, their log-softmax and both their gradients: for each chunk
// of the final norm's output hₙ (c×H) and its targets y (labels shifted by one, as
// CausalLMLoss shifts them), z = hₙ·Wᵀ is formed in float32, the summed loss adds
// Σ (logsumexp(z) − z_y) over the targets other than IgnoreIndex, and z is turned in
// place into the gradient softmax(z) − onehot(y) (zero on ignored rows), which gives
// the chunk's ∂loss/∂hₙ = (softmax(z) − onehot(y))·W. W is frozen, so nothing else
// needs z. The loss tensor the pass returns (Pass.LossSum) is
//
//	L = Σ hₙ⊙G − stopgrad(Σ hₙ⊙G) + ℓ
//
// with G the gradients above and ℓ the summed loss: its value is ℓ exactly (the first
// two terms cancel to zero), and backward through it sends G, times the incoming
// gradient, into the final norm and the blocks below, which is the gradient libtorch's
// cross-entropy on the full logits gives, up to float32 rounding.
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
	var sum, grad *ts.Tensor
	err = tensorkit.WithGrad(false, func() error {
		var err error
		sum, grad, err = lossAndGrad(x, ctx.in.Labels, head.vocab(), m.fused.chunk)
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
// no autograd) against labels (B×T, unshifted) through the frozen projection v, and
// its gradient with respect to x (B×T×H, x's dtype), chunk positions at a time.
func lossAndGrad(x, labels *ts.Tensor, v *Linear, chunk int) (sum, grad *ts.Tensor, err error) {
	s := newScope("loss and gradient")
	defer s.drop()
	xs, err := x.Size()
	if err != nil {
		return nil, nil, err
	}
	b, t, hid := xs[0], xs[1], xs[2]
	n, vocab := b*t, int64(v.DOut)
	dev, err := x.Device()
	if err != nil {
		return nil, nil, err
	}
	// The target of position t is labels[t+1]; the last position of a row has none.
	none, err := ts.Full([]int64{b, 1}, ts.IntScalar(IgnoreIndex), gotch.Int64, dev)
	none = s.track(none, err, "full")
	y := s.view(s.cat(1, s.narrow(labels, 1, 1, t-1), none), n)
	flat := s.view(s.contiguous(x), n, hid)
	if !s.ok(y, flat) {
		return nil, nil, s.err
	}
	c := chunkRows(chunk, n, hid, vocab)
	acc := upcast(x.DType())
	total, err := ts.Zeros([]int64{1}, acc, dev)
	if total = s.track(total, err, "zeros"); !s.ok(total) {
		return nil, nil, s.err
	}
	var parts []*ts.Tensor
	for r := int64(0); r < n; r += c {
		k := min(c, n-r)
		g, err := chunkLossAndGrad(s.narrow(flat, 0, r, k), s.narrow(y, 0, r, k), v, total)
		if err != nil {
			return nil, nil, fmt.Errorf("positions %d to %d: %w", r, r+k, err)
		}
		parts = append(parts, s.track(g, nil, ""))
	}
	grad = s.view(s.cat(0, parts...), b, t, hid)
	if !s.ok(grad) {
		return nil, nil, s.err
	}
	sum, err = total.Squeeze(false) // gotch's Zeros takes no 0-dim shape
	if sum = s.track(sum, err, "squeeze"); !s.ok(sum) {
		return nil, nil, s.err
	}
	return s.keep(sum), s.keep(grad), nil
}

// chunkRows is the number of positions per chunk: chunk if set, else N·H/V rounded up
// (a chunk's logits no larger than the hidden states), at least 32, at most n.
func chunkRows(chunk int, n, hid, vocab int64) int64 {
	c := int64(chunk)
	if c <= 0 {
		c = max((n*hid+vocab-1)/vocab, 32)
	}
	return max(min(c, n), 1)
}

// chunkLossAndGrad adds the summed loss of k positions (x k×H, y k targets) to total
// and returns their gradient (k×H, x's dtype). Its c×V tensors live only here.
func chunkLossAndGrad(x, y *ts.Tensor, v *Linear, total *ts.Tensor) (*ts.Tensor, error) {
	s := newScope("chunk")
	defer s.drop()
	z := s.toDType(s.linear(x, v.Weight, v.Bias), upcast(x.DType()))
	valid := s.neScalar(y, IgnoreIndex)
	if !s.ok(z, valid) {
		return nil, s.err
	}
	safe, err := y.MaskedFill(s.not(valid), ts.IntScalar(0), false)
	idx := s.unsqueeze(s.track(safe, err, "masked fill"), 1)
	keep := s.unsqueeze(s.toDType(valid, z.DType()), 1)
	if !s.ok(idx, keep) {
		return nil, s.err
	}
	lse, err := z.Logsumexp([]int64{1}, true, false)
	lse = s.track(lse, err, "logsumexp")
	if !s.ok(lse) {
		return nil, s.err
	}
	zy, err := z.Gather(1, idx, false, false)
	zy = s.track(zy, err, "gather")
	per := s.mul(s.sub(lse, zy), keep)
	if !s.ok(per) {
		return nil, s.err
	}
	part, err := per.Sum(z.DType(), false)
	if part = s.track(part, err, "sum"); !s.ok(part) {
		return nil, s.err
	}
	if err := tensorkit.Done(total.AddOut(total, part, false)); err != nil {
		return nil, fmt.Errorf("add: %w", err)
	}
	// z becomes softmax(z) − onehot(y) on the rows that count, zero elsewhere, in place
	// (out= with out = z; see tensorkit.Done).
	if err := tensorkit.Done(z.SubOut(z, lse, false)); err != nil {
		return nil, fmt.Errorf("sub: %w", err)
	}
	if err := tensorkit.Done(z.ExpOut(z, false)); err != nil {
		return nil, fmt.Errorf("exp: %w", err)
	}
	minus := s.neg(keep)
	if !s.ok(minus) {
		return nil, s.err
	}
	if err := tensorkit.Done(z.ScatterAddOut(z, 1, idx, minus, false)); err != nil {
		return nil, fmt.Errorf("scatter add: %w", err)
	}
	if err := tensorkit.Done(z.MulOut(z, keep, false)); err != nil {
		return nil, fmt.Errorf("mul: %w", err)
	}
	g := s.matmul(s.toDType(z, x.DType()), v.Weight)
	if !s.ok(g) {
		return nil, s.err
	}
	return s.keep(g), nil
}
