package metrics

import (
	"errors"
	"math"
	"testing"
)

func TestPerplexity(t *testing.T) {
	// ln 10 per token → perplexity 10; 0 → 1.
	if p, err := Perplexity(3*math.Ln10, 3); err != nil || math.Abs(p-10) > 1e-13 {
		t.Errorf("Perplexity(3 ln 10, 3) = %v, %v; want 10", p, err)
	}
	if p, _ := Perplexity(0, 5); p != 1 {
		t.Errorf("Perplexity(0, 5) = %v, want 1", p)
	}
	if p, err := Perplexity(1e6, 1); err != nil || !math.IsInf(p, 1) {
		t.Errorf("overflow: %v, %v; want +Inf", p, err)
	}
	if m, err := MeanNLL(7, 2); err != nil || m != 3.5 {
		t.Errorf("MeanNLL(7, 2) = %v, %v", m, err)
	}
	for _, c := range []struct {
		sum    float64
		tokens int64
		is     error
	}{{1, 0, ErrEmpty}, {1, -3, ErrEmpty}, {math.NaN(), 4, ErrNotFinite}, {math.Inf(1), 4, ErrNotFinite}, {-0.5, 4, ErrInput}} {
		if _, err := Perplexity(c.sum, c.tokens); !errors.Is(err, c.is) {
			t.Errorf("Perplexity(%v, %d) error = %v, want %v", c.sum, c.tokens, err, c.is)
		}
	}
}

func TestChooseSumAndMean(t *testing.T) {
	// Option 0: −3 over 1 token (mean −3); option 1: −4 over 4 tokens (mean −1).
	opts := []Option{{LogLik: -3, Tokens: 1}, {LogLik: -4, Tokens: 4}}
	if c, err := Choose(opts, SumLogLik); err != nil || c != 0 {
		t.Errorf("sum: %d, %v; want 0", c, err)
	}
	if c, err := Choose(opts, MeanLogLik); err != nil || c != 1 {
		t.Errorf("mean: %d, %v; want 1", c, err)
	}
	// Ties go to the first; −Inf is a valid (impossible) option.
	tied := []Option{{LogLik: math.Inf(-1), Tokens: 1}, {LogLik: -2, Tokens: 1}, {LogLik: -2, Tokens: 1}}
	if c, _ := Choose(tied, SumLogLik); c != 1 {
		t.Errorf("tie: %d, want 1", c)
	}
	if c, _ := Choose([]Option{{LogLik: math.Inf(-1)}, {LogLik: math.Inf(-1)}}, SumLogLik); c != 0 {
		t.Errorf("all −Inf: %d, want 0", c)
	}
	for _, bad := range [][]Option{nil, {{LogLik: math.NaN(), Tokens: 1}}, {{LogLik: math.Inf(1), Tokens: 1}}} {
		if _, err := Choose(bad, SumLogLik); err == nil {
			t.Errorf("Choose(%v) succeeded", bad)
		}
	}
	if _, err := Choose([]Option{{LogLik: -1, Tokens: 0}}, MeanLogLik); !errors.Is(err, ErrInput) {
		t.Errorf("mean with 0 tokens: %v", err)
	}
	if _, err := Choose(opts, Scoring(9)); !errors.Is(err, ErrInput) {
		t.Errorf("unknown scoring: %v", err)
	}
}

func TestMultipleChoiceAccuracy(t *testing.T) {
	qs := [][]Option{
		{{LogLik: -1, Tokens: 1}, {LogLik: -2, Tokens: 1}},                          // picks 0
		{{LogLik: -5, Tokens: 5}, {LogLik: -2, Tokens: 1}, {LogLik: -9, Tokens: 1}}, // sum picks 1, mean picks 0
		{{LogLik: -3, Tokens: 1}, {LogLik: -1, Tokens: 1}},                          // picks 1
	}
	gold := []int{0, 0, 0}
	if a, err := MultipleChoiceAccuracy(qs, gold, SumLogLik); err != nil || a != 1.0/3 {
		t.Errorf("sum accuracy = %v, %v; want 1/3", a, err)
	}
	if a, err := MultipleChoiceAccuracy(qs, gold, MeanLogLik); err != nil || a != 2.0/3 {
		t.Errorf("mean accuracy = %v, %v; want 2/3", a, err)
	}
	if _, err := MultipleChoiceAccuracy(qs, []int{0, 3, 0}, SumLogLik); !errors.Is(err, ErrInput) {
		t.Errorf("gold out of range: %v", err)
	}
	if _, err := MultipleChoiceAccuracy(nil, nil, SumLogLik); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	if _, err := MultipleChoiceAccuracy(qs, []int{0}, SumLogLik); !errors.Is(err, ErrLength) {
		t.Errorf("lengths: %v", err)
	}
}
