package data

import "fmt"

// IgnoreIndex is the label of positions that do not count in the loss: PyTorch's
// cross-entropy ignore_index and the value Hugging Face uses for masked labels.
const IgnoreIndex = -100

// Example is one training sequence.
//
// Labels follow the Hugging Face convention: they are aligned with InputIDs, not shifted,
// and the loss shifts them (the logits at position t are scored against Labels[t+1]).
// Labels[0] is always IgnoreIndex, since nothing predicts the first token; so the number of
// labels that are not IgnoreIndex is exactly the number of tokens the loss scores.
type Example struct {
	InputIDs []int
	// Labels is nil for classification examples.
	Labels []int
	// PositionIDs is nil for a single document (positions 0..len-1); packed sequences
	// restart positions at 0 for every document.
	PositionIDs []int
	// SegmentIDs is nil for a single document; packed sequences number their documents
	// 1, 2, ... token by token, so attention can be masked per document.
	SegmentIDs []int
	// ClassLabel and Score are the classification target (class index, regression score).
	ClassLabel int
	Score      float64
	// Sources are the indices of the records the example was built from (set by Build
	// and Pack).
	Sources []int
	// Truncated reports that tokens were cut to fit the maximum length.
	Truncated bool
	// Padding marks a filler example (see AsPadding): it keeps the batch shape but
	// contributes nothing to the loss.
	Padding bool
}

// Len is the number of tokens.
func (e Example) Len() int { return len(e.InputIDs) }

// IsClassification reports whether the example has a class label rather than token labels.
func (e Example) IsClassification() bool { return e.Labels == nil }

// TargetTokens counts the labels that are not IgnoreIndex: the tokens the loss scores.
func (e Example) TargetTokens() int {
	n := 0
	for _, l := range e.Labels {
		if l != IgnoreIndex {
			n++
		}
	}
	return n
}

// DocStarts returns the offset of every document's first token: [0] for a plain example,
// one offset per packed document otherwise.
func (e Example) DocStarts() []int {
	if len(e.SegmentIDs) == 0 {
		return []int{0}
	}
	starts := []int{0}
	for i := 1; i < len(e.SegmentIDs); i++ {
		if e.SegmentIDs[i] != e.SegmentIDs[i-1] {
			starts = append(starts, i)
		}
	}
	return starts
}

// check reports per-token slices whose lengths differ from InputIDs.
func (e Example) check() error {
	n := len(e.InputIDs)
	if (e.Labels != nil && len(e.Labels) != n) || (e.PositionIDs != nil && len(e.PositionIDs) != n) ||
		(e.SegmentIDs != nil && len(e.SegmentIDs) != n) {
		return fmt.Errorf("%w: example has %d input ids but %d labels, %d position ids, %d segment ids",
			ErrConfig, n, len(e.Labels), len(e.PositionIDs), len(e.SegmentIDs))
	}
	return nil
}

// AsPadding returns a filler copy of e: same tokens (so the batch keeps a realistic shape)
// but every label IgnoreIndex and Padding set, so it adds nothing to the loss or to the
// target count. The distributed sampler's padded slots become such examples.
func (e Example) AsPadding() Example {
	p := e
	p.Padding = true
	if e.Labels != nil {
		p.Labels = make([]int, len(e.Labels))
		for i := range p.Labels {
			p.Labels[i] = IgnoreIndex
		}
	}
	return p
}
