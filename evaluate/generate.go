package evaluate

import (
	"fmt"
	"slices"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
)

// DefaultMaxNewTokens bounds greedy generation when Options leave it 0.
const DefaultMaxNewTokens = 32

// Decoder turns token ids back into text (tokenizer.Tokenizer implements it).
type Decoder interface {
	Decode(ids []int, skipSpecial bool) (string, error)
}

// Greedy extends prompt with the most likely next token, one token at a time, until a
// token of stop is produced (it is kept in the result) or maxNew tokens were added,
// and returns the new tokens. There is no KV cache: every step runs the whole sequence
// again, so n new tokens cost n forward passes over up to len(prompt)+n tokens —
// fine for tiny models and short answers, slow for long generations. Ties in the
// argmax go to the lowest token id.
func Greedy(m *model.Model, prompt []int, maxNew int, stop []int) ([]int, error) {
	if m.Architecture().Task != model.CausalLM {
		return nil, fmt.Errorf("%w: generation needs a causal LM, %s is %v", ErrTask, m.Architecture().Name, m.Architecture().Task)
	}
	if len(prompt) == 0 {
		return nil, fmt.Errorf("%w: empty prompt", ErrEmpty)
	}
	wasTraining := m.Training()
	m.Train(false)
	defer m.Train(wasTraining)
	seq := make([]int64, 0, len(prompt)+maxNew)
	for _, id := range prompt {
		seq = append(seq, int64(id))
	}
	var out []int
	for len(out) < maxNew {
		next, err := nextToken(m, seq)
		if err != nil {
			return nil, fmt.Errorf("evaluate: generate token %d: %w", len(out), err)
		}
		out = append(out, next)
		seq = append(seq, int64(next))
		if slices.Contains(stop, next) {
			break
		}
	}
	return out, nil
}

// nextToken returns the argmax of the logits at the last position of seq.
func nextToken(m *model.Model, seq []int64) (int, error) {
	ids, err := model.Int64Tensor(seq, 1, int64(len(seq)))
	if err != nil {
		return 0, err
	}
	defer ids.Drop()
	var next int
	err = tensorkit.NoGrad(func() error {
		logits, err := m.Forward(model.Inputs{InputIDs: ids})
		if err != nil {
			return err
		}
		defer logits.Drop()
		last, err := logits.Narrow(1, int64(len(seq)-1), 1, false)
		if err != nil {
			return err
		}
		row, err := float64s(last)
		last.Drop()
		if err != nil {
			return err
		}
		next = 0
		for v := range row {
			if row[v] > row[next] {
				next = v
			}
		}
		return nil
	})
	return next, err
}

// Generation is one greedy answer to an instruction record.
type Generation struct {
	Record data.Record
	// Output is the decoded generation (special tokens skipped), NewTokens its length.
	Output    string
	NewTokens int
}

// Generate answers every record greedily: the prompt is BOS + the rendered template
// (p.Builder's), cut from the left (after BOS) so that prompt and answer fit the
// builder's MaxLen; generation stops at EOS or after Options.MaxNewTokens tokens.
func Generate(m *model.Model, p *Pipeline, dec Decoder, records []data.Record, o Options) ([]Generation, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrEmpty)
	}
	maxNew := o.MaxNewTokens
	if maxNew <= 0 {
		maxNew = DefaultMaxNewTokens
	}
	cfg := p.Builder.Config()
	var stop []int
	if id, ok := p.Tok.EOS(); ok {
		stop = append(stop, id)
	}
	var out []Generation
	for i, rec := range records {
		prompt, err := p.Tok.Encode(cfg.Template.Prompt(rec.Instruction, rec.Input), false)
		if err != nil {
			return nil, fmt.Errorf("evaluate: %s:%d: %w", rec.File, rec.Line, err)
		}
		var bos []int
		if id, ok := p.Tok.BOS(); ok && !cfg.NoBOS {
			bos = []int{id}
		}
		if room := cfg.MaxLen - maxNew - len(bos); room < 1 {
			return nil, fmt.Errorf("%w: max length %d leaves no room for a prompt and %d new tokens", ErrConfig, cfg.MaxLen, maxNew)
		} else if len(prompt) > room {
			prompt = prompt[len(prompt)-room:]
		}
		ids, err := Greedy(m, append(bos, prompt...), maxNew, stop)
		if err != nil {
			return nil, fmt.Errorf("evaluate: record %d: %w", i, err)
		}
		text, err := dec.Decode(ids, true)
		if err != nil {
			return nil, fmt.Errorf("evaluate: record %d: decode: %w", i, err)
		}
		out = append(out, Generation{Record: rec, Output: text, NewTokens: len(ids)})
	}
	return out, nil
}
