package evaluate

import (
	"fmt"
	"math"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
)

// DefaultBatchSize is the number of examples per forward pass when Options leave it 0.
const DefaultBatchSize = 8

// Options configure the evaluators. The zero value is usable.
type Options struct {
	// BatchSize is the number of examples (or choice continuations) per forward pass;
	// 0 means DefaultBatchSize.
	BatchSize int
	// MaxNewTokens bounds greedy generation; 0 means DefaultMaxNewTokens.
	MaxNewTokens int
}

func (o Options) batchSize() int {
	if o.BatchSize > 0 {
		return o.BatchSize
	}
	return DefaultBatchSize
}

// LMResult is a language-modelling evaluation.
type LMResult struct {
	// Loss is the mean next-token cross-entropy in nats over all target tokens (the
	// tokens whose label is not IgnoreIndex, summed over all examples first: long and
	// short examples weigh by their tokens, as in training).
	Loss float64
	// SumLoss is the summed cross-entropy and Tokens the number of target tokens.
	SumLoss  float64
	Tokens   int64
	Examples int
}

// Perplexity is exp(Loss).
func (r *LMResult) Perplexity() float64 { return math.Exp(r.Loss) }

// LanguageModel scores examples (data.Builder's Text or Instruction examples, packed
// or not) with model.CausalLMLoss in eval mode and without autograd: the loss counts
// only labelled tokens (responses of instruction data, every token but the first of
// text data).
func LanguageModel(m *model.Model, p *Pipeline, examples []data.Example, o Options) (*LMResult, error) {
	if m.Architecture().Task != model.CausalLM {
		return nil, fmt.Errorf("%w: language-model evaluation needs a causal LM, %s is %v", ErrTask, m.Architecture().Name, m.Architecture().Task)
	}
	if len(examples) == 0 {
		return nil, fmt.Errorf("%w: no examples", ErrEmpty)
	}
	wasTraining := m.Training()
	m.Train(false)
	defer m.Train(wasTraining)
	res := &LMResult{Examples: len(examples)}
	bs := o.batchSize()
	for start := 0; start < len(examples); start += bs {
		part := examples[start:min(start+bs, len(examples))]
		sum, n, err := lmBatch(m, part, p.Collator)
		if err != nil {
			return nil, fmt.Errorf("evaluate: examples %d–%d: %w", start, start+len(part)-1, err)
		}
		res.SumLoss += sum
		res.Tokens += n
	}
	if res.Tokens == 0 {
		return nil, fmt.Errorf("%w: the examples have no target tokens", ErrEmpty)
	}
	res.Loss = res.SumLoss / float64(res.Tokens)
	return res, nil
}

// lmBatch returns the summed loss and the target count of one batch.
func lmBatch(m *model.Model, examples []data.Example, col *data.Collator) (float64, int64, error) {
	b, err := col.Collate(examples)
	if err != nil {
		return 0, 0, err
	}
	packed := false
	for _, ex := range examples {
		packed = packed || ex.SegmentIDs != nil
	}
	in, err := batchInputs(b, packed)
	if err != nil {
		return 0, 0, err
	}
	defer in.close()
	labels, err := model.Int64Tensor(b.Labels, int64(b.Size), int64(b.SeqLen))
	if err != nil {
		return 0, 0, err
	}
	defer labels.Drop()
	var sum float64
	var count int64
	err = tensorkit.NoGrad(func() error {
		logits, err := m.Forward(in.Inputs)
		if err != nil {
			return err
		}
		defer logits.Drop()
		loss, n, err := model.CausalLMLoss(logits, labels)
		if err != nil {
			return err
		}
		defer loss.Drop()
		v, err := float64s(loss)
		if err != nil {
			return err
		}
		sum, count = v[0], n
		return nil
	})
	return sum, count, err
}
