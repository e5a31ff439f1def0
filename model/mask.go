package model

import (
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Attention masks are boolean tensors that are true where a query must NOT attend to a
// key; attention fills those scores with the dtype's lowest value (torch.finfo.min, as
// transformers does, so that a row with no visible key becomes uniform instead of NaN).

// causalMask returns the (1 or B, 1, T, T) mask of a decoder: key j is hidden from query
// i when j > i, when i − j ≥ window (window > 0: sliding-window attention, transformers'
// convention), when j is padding (attn, B×T, 0 on padding; nil: no padding) or when i and
// j belong to different packed documents (seg, B×T; nil: one document per row).
func causalMask(s *scope, t int64, window int, attn, seg *ts.Tensor, dev gotch.Device) *ts.Tensor {
	pos := s.arange(t, dev)
	qi := s.unsqueeze(pos, 1) // T,1
	kj := s.unsqueeze(pos, 0) // 1,T
	allowed := s.le(kj, qi)
	if window > 0 {
		allowed = s.and(allowed, s.ltScalar(s.sub(qi, kj), int64(window)))
	}
	allowed = s.view(allowed, 1, 1, t, t)
	return s.not(restrict(s, allowed, t, attn, seg))
}

// paddingMask returns the (B, 1, 1, T) mask of an encoder: padding keys are hidden.
func paddingMask(s *scope, t int64, attn *ts.Tensor) *ts.Tensor {
	if attn == nil {
		return nil
	}
	return s.not(s.view(s.neScalar(attn, 0), -1, 1, 1, t))
}

// restrict removes padding keys and keys of other documents from allowed.
func restrict(s *scope, allowed *ts.Tensor, t int64, attn, seg *ts.Tensor) *ts.Tensor {
	if attn != nil {
		allowed = s.and(allowed, s.view(s.neScalar(attn, 0), -1, 1, 1, t))
	}
	if seg != nil {
		allowed = s.and(allowed, s.eq(s.view(seg, -1, 1, t, 1), s.view(seg, -1, 1, 1, t)))
	}
	return allowed
}
