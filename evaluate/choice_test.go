package evaluate_test

import (
	"math"
	"slices"
	"testing"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/evaluate"
)

// Commonsense-170k records become questions with the instruction's options, and each
// continuation is the output with the gold answer swapped for the option.
func TestChoicesFromRecords(t *testing.T) {
	records := read(t, data.CommonsenseJSON, "commonsense_tiny.json")
	items, err := evaluate.ChoicesFromRecords(records)
	if err != nil {
		t.Fatal(err)
	}
	it := items[0] // "… Answer format: answer1/answer2", answer2
	if !slices.Equal(it.Options, []string{"answer1", "answer2"}) || it.Gold != 1 {
		t.Fatalf("options %v gold %d", it.Options, it.Gold)
	}
	want := []string{"the correct answer is answer1", "the correct answer is answer2"}
	if !slices.Equal(it.Continuations, want) {
		t.Errorf("continuations %q", it.Continuations)
	}
	bad := records[0]
	bad.Answer = "answer7"
	if _, err := evaluate.ChoicesFromRecords([]data.Record{bad}); err == nil {
		t.Error("an answer outside the options was accepted")
	}
	opts, ok := evaluate.OptionsOf(data.Record{Instruction: "Is it? Answer format: true/false", Answer: "true"})
	if !ok || !slices.Equal(opts, []string{"true", "false"}) {
		t.Errorf("boolq options %v", opts)
	}
}

// Each option's log-likelihood is the sum of the continuation tokens' log-probabilities
// (EOS excluded), computed here from a single unpadded forward pass per option with a
// float64 log-softmax; the prediction and the accuracy follow from them. The pipeline
// keeps whole examples (512 tokens), so the options' token sequences differ (at 128 the
// prompt truncated every response to one shared token and every question was a tie
// that rounding decided).
func TestMultipleChoiceLogLikelihood(t *testing.T) {
	m, tok := tiny(t, "llama", 0)
	p := pipeline(t, tok, 512)
	records := read(t, data.CommonsenseJSON, "commonsense_tiny.json")[:10]
	items, err := evaluate.ChoicesFromRecords(records)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := evaluate.ScoreChoices(m, p, items, evaluate.Options{BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	eos, _ := tok.EOS()
	sure, right, maybe := 0, 0, 0 // questions with a clear margin; sure right; right if a tie goes its way
	for i, it := range items {
		ref, tol := make([]float64, len(it.Continuations)), make([]float64, len(it.Continuations))
		for j, cont := range it.Continuations {
			rec := it.Record
			rec.Output = cont
			ex, err := p.Builder.Instruction(rec)
			if err != nil {
				t.Fatal(err)
			}
			if ex.Truncated {
				t.Fatalf("question %d option %d truncated at 512 tokens", i, j)
			}
			if last := len(ex.InputIDs) - 1; ex.InputIDs[last] == eos {
				ex.Labels[last] = data.IgnoreIndex
			}
			nll, n, bound := labelNLLBound(t, m, ex)
			ref[j], tol[j] = -nll, bound
			if math.Abs(sc.LogLik[i][j]-ref[j]) > tol[j] || sc.Tokens[i][j] != n {
				t.Errorf("question %d option %d: loglik %.6f over %d tokens, want %.6f ± %.2g over %d",
					i, j, sc.LogLik[i][j], sc.Tokens[i][j], ref[j], tol[j], n)
			}
		}
		// The prediction is the argmax of the scores: decided where the best option's
		// reference score beats every other by more than both tolerances; otherwise a
		// near tie, where any option within them of the best may win.
		best := 0
		for j := range ref {
			if ref[j] > ref[best] {
				best = j
			}
		}
		var near []int
		for j := range ref {
			if ref[best]-ref[j] <= tol[best]+tol[j] {
				near = append(near, j)
			}
		}
		if len(near) == 1 {
			sure++
			if sc.Pred[i] != best {
				t.Errorf("question %d: predicted %d, want %d (scores %v)", i, sc.Pred[i], best, ref)
			}
			if best == it.Gold {
				right++
			}
		} else {
			if !slices.Contains(near, sc.Pred[i]) {
				t.Errorf("question %d: predicted %d, want one of the near-tied %v (scores %v)", i, sc.Pred[i], near, ref)
			}
			if slices.Contains(near, it.Gold) {
				maybe++
			}
		}
	}
	// A test of the argmax needs decided questions: the random model's options differ
	// by about 1 nat where the tolerance is about 1e-4.
	if sure < len(items)/2 {
		t.Fatalf("only %d of %d questions have a clear margin", sure, len(items))
	}
	r, err := evaluate.Run(m, p, records, evaluate.TaskMultipleChoice, nil, evaluate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := float64(right)/float64(len(items)), float64(right+maybe)/float64(len(items))
	if acc, _ := r.Metric("accuracy"); acc < lo || acc > hi {
		t.Errorf("accuracy %v, want %d/%d (+ up to %d near ties)", acc, right, len(items), maybe)
	}
}
