package data

import "fmt"

// Collator pads examples into a Batch. Padding is on the right.
type Collator struct {
	// PadID fills input ids past each example's end.
	PadID int
	// PadTo, when positive, is a fixed sequence length for every batch; zero pads to the
	// longest example of the batch.
	PadTo int
}

// NewCollator pads with the tokenizer's PAD token, or its EOS when it has no PAD (the
// padded positions are masked out of attention and loss either way).
func NewCollator(tok Tokenizer, padTo int) (*Collator, error) {
	if padTo < 0 {
		return nil, fmt.Errorf("%w: pad length %d", ErrConfig, padTo)
	}
	if id, ok := tok.PAD(); ok {
		return &Collator{PadID: id, PadTo: padTo}, nil
	}
	if id, ok := tok.EOS(); ok {
		return &Collator{PadID: id, PadTo: padTo}, nil
	}
	return nil, fmt.Errorf("%w: tokenizer has neither PAD nor EOS to pad with", ErrConfig)
}

// Batch is a padded batch. Every per-token slice is row-major Size×SeqLen, ready for a
// tensor of shape [Size, SeqLen].
type Batch struct {
	Size, SeqLen int
	InputIDs     []int64
	// AttentionMask is 1 on real tokens and 0 on padding.
	AttentionMask []int64
	// Labels (language modelling only, else nil) are IgnoreIndex on padding; unshifted
	// like Example.Labels.
	Labels []int64
	// PositionIDs restart per packed document; 0 on padding.
	PositionIDs []int64
	// SegmentIDs number the documents of each row from 1; 0 on padding. Attention should
	// only join tokens of the same segment.
	SegmentIDs []int64
	// Lengths is the number of real tokens of each row (the last real token, which
	// classification heads pool, sits at Lengths[i]-1).
	Lengths []int64
	// ClassLabels and Scores (classification only, else nil) are the targets; padding
	// examples get IgnoreIndex and 0.
	ClassLabels []int64
	Scores      []float32
	// ExampleMask is 1 for real examples and 0 for padding ones.
	ExampleMask []int64
	// TargetTokens is the number of labels that are not IgnoreIndex (language modelling):
	// summed over micro-batches and ranks it is the loss normaliser.
	TargetTokens int
	// Examples is the number of real examples: the classification loss normaliser.
	Examples int
}

// Collate pads examples into one batch. All examples must be of one kind (language
// modelling or classification).
func (c *Collator) Collate(examples []Example) (*Batch, error) {
	if len(examples) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrConfig)
	}
	classify := examples[0].IsClassification()
	seqLen := c.PadTo
	for i, ex := range examples {
		if err := ex.check(); err != nil {
			return nil, fmt.Errorf("data: collate example %d: %w", i, err)
		}
		if ex.IsClassification() != classify {
			return nil, fmt.Errorf("%w: batch mixes classification and language-modelling examples (example %d)", ErrConfig, i)
		}
		if c.PadTo > 0 && ex.Len() > c.PadTo {
			return nil, fmt.Errorf("%w: example %d has %d tokens, batch length is %d", ErrTooLong, i, ex.Len(), c.PadTo)
		}
		if c.PadTo == 0 {
			seqLen = max(seqLen, ex.Len())
		}
	}
	size := len(examples)
	b := &Batch{
		Size: size, SeqLen: seqLen,
		InputIDs:      make([]int64, size*seqLen),
		AttentionMask: make([]int64, size*seqLen),
		PositionIDs:   make([]int64, size*seqLen),
		SegmentIDs:    make([]int64, size*seqLen),
		Lengths:       make([]int64, size),
		ExampleMask:   make([]int64, size),
	}
	if classify {
		b.ClassLabels = make([]int64, size)
		b.Scores = make([]float32, size)
	} else {
		b.Labels = make([]int64, size*seqLen)
	}
	for row, ex := range examples {
		c.fillRow(b, row, ex)
	}
	return b, nil
}

func (c *Collator) fillRow(b *Batch, row int, ex Example) {
	base := row * b.SeqLen
	for t := range b.SeqLen {
		i := base + t
		if t >= ex.Len() {
			b.InputIDs[i] = int64(c.PadID)
			if b.Labels != nil {
				b.Labels[i] = IgnoreIndex
			}
			continue
		}
		b.InputIDs[i] = int64(ex.InputIDs[t])
		b.AttentionMask[i] = 1
		b.PositionIDs[i] = int64(t)
		if ex.PositionIDs != nil {
			b.PositionIDs[i] = int64(ex.PositionIDs[t])
		}
		b.SegmentIDs[i] = 1
		if ex.SegmentIDs != nil {
			b.SegmentIDs[i] = int64(ex.SegmentIDs[t])
		}
		if b.Labels != nil {
			label := ex.Labels[t]
			if ex.Padding {
				label = IgnoreIndex
			}
			b.Labels[i] = int64(label)
			if label != IgnoreIndex {
				b.TargetTokens++
			}
		}
	}
	b.Lengths[row] = int64(ex.Len())
	if ex.Padding {
		if b.ClassLabels != nil {
			b.ClassLabels[row] = IgnoreIndex
		}
		return
	}
	b.ExampleMask[row] = 1
	b.Examples++
	if b.ClassLabels != nil {
		b.ClassLabels[row] = int64(ex.ClassLabel)
		b.Scores[row] = float32(ex.Score)
	}
}
