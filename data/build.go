package data

import (
	"fmt"
)

// BuildConfig says how records become examples.
type BuildConfig struct {
	// MaxLen is the most tokens an example may have (required).
	MaxLen int
	// Template renders instruction prompts; the zero value means AlpacaTemplate.
	Template Template
	// MinResponseTokens is how many response tokens truncation always keeps when the
	// response has that many (default 1); see Builder.Instruction.
	MinResponseTokens int
	// NoBOS leaves out the BOS token the builders otherwise put first (when the tokenizer
	// has one).
	NoBOS bool
	// PairSeparator joins the two texts of a classification pair (default "\n").
	PairSeparator string
}

// Builder tokenises records into examples.
type Builder struct {
	tok           Tokenizer
	cfg           BuildConfig
	bos, eos      []int // zero or one token each
	pairSeparator []int
	minRespTokens int
}

// NewBuilder checks cfg and fills in its defaults.
func NewBuilder(tok Tokenizer, cfg BuildConfig) (*Builder, error) {
	if tok == nil {
		return nil, fmt.Errorf("%w: no tokenizer", ErrConfig)
	}
	if cfg.Template == (Template{}) {
		cfg.Template = AlpacaTemplate
	}
	if err := cfg.Template.Validate(); err != nil {
		return nil, err
	}
	if cfg.MinResponseTokens == 0 {
		cfg.MinResponseTokens = 1
	}
	if cfg.PairSeparator == "" {
		cfg.PairSeparator = "\n"
	}
	b := &Builder{tok: tok, cfg: cfg, minRespTokens: cfg.MinResponseTokens}
	if id, ok := tok.BOS(); ok && !cfg.NoBOS {
		b.bos = []int{id}
	}
	if id, ok := tok.EOS(); ok {
		b.eos = []int{id}
	}
	if cfg.MaxLen < 2 || cfg.MinResponseTokens < 0 || len(b.bos)+cfg.MinResponseTokens >= cfg.MaxLen {
		return nil, fmt.Errorf("%w: max length %d must exceed BOS + min response tokens (%d)",
			ErrConfig, cfg.MaxLen, len(b.bos)+cfg.MinResponseTokens)
	}
	sep, err := tok.Encode(cfg.PairSeparator, false)
	if err != nil {
		return nil, fmt.Errorf("data: encode pair separator: %w", err)
	}
	b.pairSeparator = sep
	return b, nil
}

// Config returns the configuration with its defaults filled in.
func (b *Builder) Config() BuildConfig { return b.cfg }

// Instruction builds a prompt/response example. The prompt (BOS + rendered template) and
// the response (output + EOS) are tokenised separately; prompt positions get IgnoreIndex
// labels, response positions their own ids.
//
// Truncation, when prompt + response exceed MaxLen: the prompt is kept whole and the
// response is cut at its end (losing EOS), as long as at least MinResponseTokens response
// tokens still fit. When the prompt alone leaves less room than that, the response keeps
// its first MinResponseTokens tokens and the prompt is cut at its start instead: BOS is
// kept, then the prompt's last tokens, so the end of the template (the "### Response:"
// cue) always sits right before the response.
func (b *Builder) Instruction(rec Record) (Example, error) {
	prompt, err := b.encode(b.cfg.Template.Prompt(rec.Instruction, rec.Input), rec, "prompt")
	if err != nil {
		return Example{}, err
	}
	response, err := b.encode(rec.Output, rec, "output")
	if err != nil {
		return Example{}, err
	}
	prompt = append(append([]int{}, b.bos...), prompt...)
	response = append(response, b.eos...)

	truncated := false
	if maxLen := b.cfg.MaxLen; len(prompt)+len(response) > maxLen {
		truncated = true
		minResp := min(len(response), b.minRespTokens)
		if maxLen-len(prompt) >= minResp {
			response = response[:maxLen-len(prompt)]
		} else {
			response = response[:minResp]
			keep := maxLen - minResp - len(b.bos) // prompt tokens after BOS
			prompt = append(prompt[:len(b.bos):len(b.bos)], prompt[len(prompt)-keep:]...)
		}
	}
	ids := append(prompt, response...)
	labels := make([]int, len(ids))
	for i := range labels {
		if i < len(prompt) {
			labels[i] = IgnoreIndex
		} else {
			labels[i] = ids[i]
		}
	}
	labels[0] = IgnoreIndex
	return Example{InputIDs: ids, Labels: labels, Truncated: truncated}, nil
}

// Text builds language-modelling examples from a document: BOS + text + EOS, every token
// a target, split into consecutive chunks of at most MaxLen tokens. Each chunk's first
// token is not a target, since nothing precedes it in that chunk; a last chunk of a single
// token would hold no target at all and is left out.
func (b *Builder) Text(rec Record) ([]Example, error) {
	ids, err := b.encode(rec.Text, rec, "text")
	if err != nil {
		return nil, err
	}
	all := make([]int, 0, len(ids)+2)
	all = append(append(append(all, b.bos...), ids...), b.eos...)
	var out []Example
	for start := 0; start < len(all); start += b.cfg.MaxLen {
		chunk := all[start:min(start+b.cfg.MaxLen, len(all))]
		if len(chunk) == 1 && start > 0 {
			break // a lone last token would be a chunk without targets
		}
		labels := append([]int(nil), chunk...)
		labels[0] = IgnoreIndex
		out = append(out, Example{InputIDs: chunk, Labels: labels})
	}
	return out, nil
}

// Classification builds a classification example: BOS + text [+ separator + pair] + EOS,
// with ClassLabel and Score from the record. When too long, tokens are cut from the end of
// the longer text, one at a time, until it fits (Hugging Face's "longest_first").
func (b *Builder) Classification(rec Record) (Example, error) {
	first, err := b.encode(rec.Text, rec, "text")
	if err != nil {
		return Example{}, err
	}
	var second, sep []int
	if rec.HasPair {
		if second, err = b.encode(rec.TextPair, rec, "sentence2"); err != nil {
			return Example{}, err
		}
		sep = b.pairSeparator
	}
	budget := b.cfg.MaxLen - len(b.bos) - len(b.eos) - len(sep)
	if budget < 1 {
		return Example{}, fmt.Errorf("%w: max length %d leaves no room for text", ErrConfig, b.cfg.MaxLen)
	}
	truncated := len(first)+len(second) > budget
	for len(first)+len(second) > budget {
		if len(first) > len(second) {
			first = first[:len(first)-1]
		} else {
			second = second[:len(second)-1]
		}
	}
	ids := make([]int, 0, b.cfg.MaxLen)
	ids = append(append(append(append(append(ids, b.bos...), first...), sep...), second...), b.eos...)
	return Example{InputIDs: ids, ClassLabel: rec.Label, Score: rec.Score, Truncated: truncated}, nil
}

func (b *Builder) encode(text string, rec Record, what string) ([]int, error) {
	ids, err := b.tok.Encode(text, false)
	if err != nil {
		return nil, fmt.Errorf("data: %s:%d: tokenise %s: %w", rec.File, rec.Line, what, err)
	}
	return ids, nil
}
