package metrics

import (
	"fmt"
	"math"
)

// Perplexity is exp(sumNLL / tokens): sumNLL is the summed negative log-likelihood (in
// nats) of tokens target tokens, as accumulated over an evaluation set (summing per-batch
// sums, not averaging per-batch means, so that batches of different sizes weigh by their
// tokens). A very large mean NLL gives +Inf.
func Perplexity(sumNLL float64, tokens int64) (float64, error) {
	m, err := MeanNLL(sumNLL, tokens)
	if err != nil {
		return 0, fmt.Errorf("perplexity: %w", err)
	}
	return math.Exp(m), nil
}

// MeanNLL is sumNLL / tokens, the mean loss per token, with Perplexity's checks.
func MeanNLL(sumNLL float64, tokens int64) (float64, error) {
	switch {
	case tokens <= 0:
		return 0, fmt.Errorf("%w: %d tokens", ErrEmpty, tokens)
	case math.IsNaN(sumNLL) || math.IsInf(sumNLL, 0):
		return 0, fmt.Errorf("%w: NLL sum %v", ErrNotFinite, sumNLL)
	case sumNLL < 0:
		return 0, fmt.Errorf("%w: negative NLL sum %v", ErrInput, sumNLL)
	}
	return sumNLL / float64(tokens), nil
}

// Option is one answer of a multiple-choice question scored by the model: the summed
// log-likelihood of its tokens given the question, and how many tokens it has.
type Option struct {
	LogLik float64
	Tokens int
}

// Scoring says how options are compared.
type Scoring int

const (
	// SumLogLik (the default) picks the option with the largest summed log-likelihood,
	// lm-evaluation-harness's "acc". It is the right choice when the options tokenise to
	// the same length, as commonsense-170k's answer tokens (answer1, option2, true, …) do;
	// otherwise it favours short options.
	SumLogLik Scoring = iota
	// MeanLogLik picks the largest log-likelihood per token, ΣlogP / Tokens, for options
	// of different lengths (full-sentence endings, as HellaSwag's).
	MeanLogLik
)

func (s Scoring) String() string {
	switch s {
	case SumLogLik:
		return "sum"
	case MeanLogLik:
		return "mean"
	}
	return fmt.Sprintf("Scoring(%d)", int(s))
}

// Choose returns the index of the best option under s. Ties go to the lowest index, so
// the choice is deterministic. A log-likelihood of −Inf (an impossible option) is allowed;
// NaN or +Inf is ErrNotFinite; MeanLogLik needs Tokens ≥ 1.
func Choose(options []Option, s Scoring) (int, error) {
	if len(options) == 0 {
		return 0, fmt.Errorf("multiple choice: %w: no options", ErrEmpty)
	}
	best, bestScore := -1, math.Inf(-1)
	for i, o := range options {
		if math.IsNaN(o.LogLik) || math.IsInf(o.LogLik, 1) {
			return 0, fmt.Errorf("multiple choice: %w: option %d has log-likelihood %v", ErrNotFinite, i, o.LogLik)
		}
		score := o.LogLik
		switch s {
		case SumLogLik:
		case MeanLogLik:
			if o.Tokens < 1 {
				return 0, fmt.Errorf("multiple choice: %w: option %d has %d tokens", ErrInput, i, o.Tokens)
			}
			score /= float64(o.Tokens)
		default:
			return 0, fmt.Errorf("multiple choice: %w: scoring %v", ErrInput, s)
		}
		if best < 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best, nil
}

// MultipleChoiceAccuracy is the fraction of questions whose chosen option (Choose) is the
// gold index.
func MultipleChoiceAccuracy(questions [][]Option, gold []int, s Scoring) (float64, error) {
	if err := pair(len(gold), len(questions)); err != nil {
		return 0, fmt.Errorf("multiple choice: %w", err)
	}
	right := 0
	for q, opts := range questions {
		if gold[q] < 0 || gold[q] >= len(opts) {
			return 0, fmt.Errorf("multiple choice: %w: question %d has gold %d of %d options", ErrInput, q, gold[q], len(opts))
		}
		c, err := Choose(opts, s)
		if err != nil {
			return 0, fmt.Errorf("question %d: %w", q, err)
		}
		if c == gold[q] {
			right++
		}
	}
	return float64(right) / float64(len(gold)), nil
}
