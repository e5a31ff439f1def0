package evaluate

import (
	"fmt"

	"github.com/lrtrain/lrtrain/data"
)

// Pipeline is how records become batches, exactly as in training: the tokenizer, the
// example builder (template, maximum length, prompt masking) and the collator.
type Pipeline struct {
	Tok      data.Tokenizer
	Builder  *data.Builder
	Collator *data.Collator
}

// NewPipeline builds the example builder for cfg and a collator that pads to the
// longest example of each batch.
func NewPipeline(tok data.Tokenizer, cfg data.BuildConfig) (*Pipeline, error) {
	b, err := data.NewBuilder(tok, cfg)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	col, err := data.NewCollator(tok, 0)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	return &Pipeline{Tok: tok, Builder: b, Collator: col}, nil
}
