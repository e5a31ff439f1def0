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
// float64 log-softmax; the prediction and the accuracy follow from them.
//
// Tolerance 1e-4 absolute on sums of ~10 float32 log-probabilities of magnitude ~6.
func TestMultipleChoiceLogLikelihood(t *testing.T) {
	m, tok := tiny(t, "llama", 0)
	p := pipeline(t, tok, 128)
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
	right := 0
	for i, it := range items {
		best, bestLL := -1, math.Inf(-1)
		for j, cont := range it.Continuations {
			rec := it.Record
			rec.Output = cont
			ex, err := p.Builder.Instruction(rec)
			if err != nil {
				t.Fatal(err)
			}
			if last := len(ex.InputIDs) - 1; ex.InputIDs[last] == eos {
				ex.Labels[last] = data.IgnoreIndex
			}
			nll, n := labelNLL(t, m, ex)
			if math.Abs(sc.LogLik[i][j]+nll) > 1e-4 || sc.Tokens[i][j] != n {
				t.Errorf("question %d option %d: loglik %.6f over %d tokens, want %.6f over %d", i, j, sc.LogLik[i][j], sc.Tokens[i][j], -nll, n)
			}
			if -nll > bestLL {
				best, bestLL = j, -nll
			}
		}
		if sc.Pred[i] != best {
			t.Errorf("question %d: predicted %d, want %d", i, sc.Pred[i], best)
		}
		if best == it.Gold {
			right++
		}
	}
	r, err := evaluate.Run(m, p, records, evaluate.TaskMultipleChoice, nil, evaluate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if acc, _ := r.Metric("accuracy"); acc != float64(right)/float64(len(items)) {
		t.Errorf("accuracy %v, want %d/%d", acc, right, len(items))
	}
}
