package data

import "fmt"

// PackSummary reports what Pack made.
type PackSummary struct {
	Examples, Sequences int
	// Fill is the fraction of the Sequences×seqLen token slots holding tokens.
	Fill float64
}

// Pack concatenates consecutive language-modelling examples into sequences of at most
// seqLen tokens, greedily and in order: an example starts a new sequence when it does not
// fit in the current one; none is ever split. Pack keeps the dataset order, so pack before
// sampling and let the sampler shuffle the packed sequences.
//
// In every packed sequence, PositionIDs restart at 0 and SegmentIDs number the documents
// 1, 2, ..., so a model can mask attention per document (DocStarts gives the boundaries);
// the label of each document's first token is IgnoreIndex, so no document is trained to
// continue the one before it. Sources lists the packed examples' sources in order.
func Pack(examples []Example, seqLen int) ([]Example, PackSummary, error) {
	sum := PackSummary{Examples: len(examples)}
	if seqLen < 1 {
		return nil, sum, fmt.Errorf("%w: pack length %d", ErrConfig, seqLen)
	}
	var out []Example
	var cur *Example
	tokens := 0
	for i, ex := range examples {
		if err := ex.check(); err != nil {
			return nil, sum, fmt.Errorf("data: pack example %d: %w", i, err)
		}
		switch {
		case ex.IsClassification():
			return nil, sum, fmt.Errorf("%w: example %d is a classification example; only language-modelling examples pack", ErrConfig, i)
		case ex.SegmentIDs != nil:
			return nil, sum, fmt.Errorf("%w: example %d is already packed", ErrConfig, i)
		case ex.Len() > seqLen:
			return nil, sum, fmt.Errorf("%w: example %d has %d tokens, pack length is %d", ErrTooLong, i, ex.Len(), seqLen)
		case ex.Len() == 0:
			continue
		}
		if cur == nil || cur.Len()+ex.Len() > seqLen {
			out = append(out, Example{
				InputIDs: make([]int, 0, seqLen), Labels: make([]int, 0, seqLen),
				PositionIDs: make([]int, 0, seqLen), SegmentIDs: make([]int, 0, seqLen),
			})
			cur = &out[len(out)-1]
		}
		segment := 1
		if n := len(cur.SegmentIDs); n > 0 {
			segment = cur.SegmentIDs[n-1] + 1
		}
		start := cur.Len()
		cur.InputIDs = append(cur.InputIDs, ex.InputIDs...)
		cur.Labels = append(cur.Labels, ex.Labels...)
		cur.Labels[start] = IgnoreIndex
		for p := range ex.Len() {
			cur.PositionIDs = append(cur.PositionIDs, p)
			cur.SegmentIDs = append(cur.SegmentIDs, segment)
		}
		cur.Sources = append(cur.Sources, ex.Sources...)
		cur.Truncated = cur.Truncated || ex.Truncated
		tokens += ex.Len()
	}
	sum.Sequences = len(out)
	if len(out) > 0 {
		sum.Fill = float64(tokens) / float64(len(out)*seqLen)
	}
	return out, sum, nil
}
