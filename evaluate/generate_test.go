package evaluate_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/evaluate"
)

// Every greedy token is the argmax of the logits that one full-sequence pass gives at
// the position before it (a causal model's logits at t depend only on tokens ≤ t); each
// by a clear margin, since the incremental passes round differently.
func TestGreedyIsArgmaxOfFullPass(t *testing.T) {
	m, tok := tiny(t, "qwen2", 0)
	prompt, err := tok.Encode("Add the two numbers. 3 + 5 =", false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := evaluate.Greedy(m, prompt, 6, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 6 {
		t.Fatalf("%d new tokens, want 6", len(out))
	}
	rows := hostLogits(t, m, append(append([]int(nil), prompt...), out...))
	for k, id := range out {
		if want := clearArgmax(t, rows[len(prompt)-1+k], fmt.Sprintf("token %d", k)); id != want {
			t.Errorf("token %d: %d, full-pass argmax %d", k, id, want)
		}
	}
	// A stop token ends generation at its first occurrence and is kept.
	stop := out[len(out)-1]
	first := slices.Index(out, stop)
	stopped, err := evaluate.Greedy(m, prompt, 6, []int{stop})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stopped, out[:first+1]) {
		t.Errorf("with stop %d: %v, want %v", stop, stopped, out[:first+1])
	}
}

// cannedDecoder stands in for the tokenizer: whatever was generated, it "decodes" to the
// same text, so that answer extraction and accuracy can be checked exactly.
type cannedDecoder string

func (c cannedDecoder) Decode([]int, bool) (string, error) { return string(c), nil }

// Generation reports the fraction of records whose extracted answer is the gold one.
func TestGenerateAnswerAccuracy(t *testing.T) {
	m, tok := tiny(t, "llama", 0)
	p := pipeline(t, tok, 160)
	records := read(t, data.CommonsenseJSON, "commonsense_tiny.json")[:8]
	want := 0
	for _, r := range records {
		if r.Answer == "answer2" {
			want++
		}
	}
	r, err := evaluate.Run(m, p, records, evaluate.TaskGenerate, cannedDecoder("The correct answer is answer2."), evaluate.Options{MaxNewTokens: 2})
	if err != nil {
		t.Fatal(err)
	}
	if acc, _ := r.Metric("answer_accuracy"); acc != float64(want)/float64(len(records)) {
		t.Errorf("answer_accuracy %v, want %d/%d", acc, want, len(records))
	}
	if ans, _ := r.Metric("answered"); ans != 1 {
		t.Errorf("answered %v, want 1", ans)
	}
	if len(r.Samples) != len(records) || r.Samples[0].Extracted != "answer2" {
		t.Errorf("samples %+v", r.Samples)
	}
	// With the real tokenizer the random model answers nothing recognisable, but runs.
	if _, err := evaluate.Run(m, p, records[:2], evaluate.TaskGenerate, tok, evaluate.Options{MaxNewTokens: 3}); err != nil {
		t.Fatal(err)
	}
}
