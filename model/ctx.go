package model

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// fwdCtx is what every block of one forward pass shares: sizes, masks, rotary tables,
// training mode and the dropout keys.
type fwdCtx struct {
	b, t   int64
	dtype  gotch.DType
	device gotch.Device
	train  bool
	eager  bool // never use fused attention

	in    Inputs
	rope  *rope
	cos   *ts.Tensor
	sin   *ts.Tensor
	masks map[int]*ts.Tensor // decoder masks by sliding window (0: full attention)
	pad   *ts.Tensor         // encoder key-padding mask, nil without padding

	hashed  bool   // dropout from hashedKeep instead of libtorch's generator
	passKey uint64 // the pass's dropout key
	block   int    // block being run (−1: embeddings)
	site    int    // dropout sites used so far in the block

	// copyFrozen: blocks use copies of the frozen vectors their graph saves (norm
	// weights), so that the block hook may release the originals (SetRegather).
	copyFrozen bool
	// fused: the head computes the loss from in.Labels (SetFusedLoss).
	fused bool
	// rows: the block hook serves the vocabulary matrices' rows (RowReader): the
	// pass reads them through it and never has them bound; nil when they are bound.
	rows RowReader

	own *scope // owns the tensors above
}

func (c *fwdCtx) close() {
	if c != nil && c.own != nil {
		c.own.drop()
	}
}

// decoderMask returns the causal mask for a sliding window (0: none), built once per pass.
func (c *fwdCtx) decoderMask(s *scope, window int) *ts.Tensor {
	if m, ok := c.masks[window]; ok {
		return m
	}
	m := causalMask(c.own, c.t, window, c.in.AttentionMask, c.in.SegmentIDs, c.device)
	if c.own.err != nil {
		s.fail(c.own.err)
		return nil
	}
	c.masks[window] = m
	return m
}

// useFused reports whether attention may use the fused op: it must exist, not be
// disabled, and its dropout (which draws from libtorch's generator) must not be one
// that has to be reproducible.
func (c *fwdCtx) useFused(p float64) bool {
	if c.eager || !FusedAttentionAvailable() {
		return false
	}
	return !(c.hashed && c.train && p > 0)
}

// dropout applies dropout p in training: libtorch's own (fast, from its global
// generator), or with a dropout seed the counter-based masks of hashedKeep, which a
// checkpointed block recomputes exactly and a resumed run reproduces.
func (c *fwdCtx) dropout(s *scope, x *ts.Tensor, p float64) *ts.Tensor {
	if !c.train || p == 0 || !s.ok(x) {
		return x
	}
	if !c.hashed {
		return s.dropout(x, p, true)
	}
	key := mix64(c.passKey ^ mix64(uint64(c.block+2)<<20|uint64(c.site)))
	c.site++
	return s.mul(x, hashedKeep(s, x, p, key))
}

// at positions the context at block i (−1: embeddings, numBlocks: head) so that the
// dropout sites of a block get the same keys whenever the block runs.
func (c *fwdCtx) at(block int) {
	c.block, c.site = block, 0
}
