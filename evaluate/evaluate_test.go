package evaluate_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/evaluate"
)

// Perplexity is exp of the token-weighted mean NLL of the labelled tokens, computed here
// from per-sequence logits with a float64 log-softmax; padding in batches changes nothing.
//
// Tolerance 1e-5 relative: the model computes in float32 (logits and its
// cross-entropy), the reference's log-softmax in float64 from the same float32 logits.
func TestLanguageModelPerplexity(t *testing.T) {
	m, tok := tiny(t, "llama", 0)
	p := pipeline(t, tok, 64)
	records := read(t, data.AlpacaJSON, "alpaca_tiny_eval.json")[:12]
	examples, _, err := p.Builder.Build(records)
	if err != nil {
		t.Fatal(err)
	}
	var nll float64
	var tokens int
	for _, ex := range examples {
		s, n := labelNLL(t, m, ex)
		nll, tokens = nll+s, tokens+n
	}
	want := nll / float64(tokens)
	for _, bs := range []int{1, 5} {
		res, err := evaluate.LanguageModel(m, p, examples, evaluate.Options{BatchSize: bs})
		if err != nil {
			t.Fatal(err)
		}
		if res.Tokens != int64(tokens) || !near(res.Loss, want, 1e-5) {
			t.Errorf("batch %d: loss %.7f over %d tokens, want %.7f over %d", bs, res.Loss, res.Tokens, want, tokens)
		}
		if !near(res.Perplexity(), math.Exp(want), 1e-4) {
			t.Errorf("batch %d: perplexity %g, want %g", bs, res.Perplexity(), math.Exp(want))
		}
	}
	r, err := evaluate.Run(m, p, records, evaluate.TaskLM, nil, evaluate.Options{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	if ppl, _ := r.Metric("perplexity"); !near(ppl, math.Exp(want), 1e-4) {
		t.Errorf("report perplexity %g, want %g", ppl, math.Exp(want))
	}
}

// Accuracy, binary F1 and MCC are checked against the confusion counts of per-example
// argmax predictions, with the textbook formulas. Every prediction has a clear margin
// (clearArgmax), so the batched pass under test, rounding differently, picks the same.
func TestClassificationMetrics(t *testing.T) {
	m, tok := tinyWith(t, "roberta", 2, 1, 0.3) // a seed whose random head predicts both classes
	p := pipeline(t, tok, 32)
	records := read(t, data.ClassificationJSONL, "sentiment_tiny_eval.jsonl", "negative", "positive")
	var tp, tn, fp, fn float64
	for i, rec := range records {
		ex, err := p.Builder.Classification(rec)
		if err != nil {
			t.Fatal(err)
		}
		pred := clearArgmax(t, hostLogits(t, m, ex.InputIDs)[0], fmt.Sprintf("record %d", i))
		switch {
		case pred == 1 && rec.Label == 1:
			tp++
		case pred == 0 && rec.Label == 0:
			tn++
		case pred == 1:
			fp++
		default:
			fn++
		}
	}
	if tp+fp == 0 || tn+fn == 0 {
		t.Fatalf("the random classifier predicts one class only (tp %v fp %v tn %v fn %v); pick another seed", tp, fp, tn, fn)
	}
	acc := (tp + tn) / float64(len(records))
	f1 := 2 * tp / (2*tp + fp + fn)
	mcc := (tp*tn - fp*fn) / math.Sqrt((tp+fp)*(tp+fn)*(tn+fp)*(tn+fn))
	r, err := evaluate.Run(m, p, records, evaluate.TaskClassification, nil, evaluate.Options{BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"accuracy": acc, "f1": f1, "mcc": mcc} {
		if got, ok := r.Metric(name); !ok || !near(got, want, 1e-12) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if r.Examples != len(records) {
		t.Errorf("examples %d, want %d", r.Examples, len(records))
	}
	var buf strings.Builder
	if err := r.Table(&buf); err != nil || !strings.Contains(buf.String(), "mcc") {
		t.Errorf("table %q (%v)", buf.String(), err)
	}
}

// A one-label model is scored as regression: Pearson of the predicted scores against
// the targets, computed here from the per-example outputs.
func TestRegressionMetrics(t *testing.T) {
	m, tok := tiny(t, "bert", 1)
	p := pipeline(t, tok, 32)
	var records []data.Record
	for i, s := range []string{"a b c", "the cat", "what a day", "no", "yes yes", "maybe later", "on the mat", "x"} {
		records = append(records, data.Record{Kind: data.KindClassification, Text: s, Score: float64(i%5) / 2, Line: i + 1})
	}
	var xs, ys []float64
	for _, rec := range records {
		ex, _ := p.Builder.Classification(rec)
		xs = append(xs, hostLogits(t, m, ex.InputIDs)[0][0])
		ys = append(ys, rec.Score)
	}
	r, err := evaluate.Run(m, p, records, evaluate.TaskClassification, nil, evaluate.Options{BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Metric("pearson"); !near(got, pearson(xs, ys), 1e-5) {
		t.Errorf("pearson %v, want %v", got, pearson(xs, ys))
	}
	if _, ok := r.Metric("spearman"); !ok {
		t.Error("no spearman")
	}
	raw, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatalf("report JSON does not parse: %v\n%s", err, raw)
	}
}

// pearson is the textbook sample correlation.
func pearson(x, y []float64) float64 {
	n := float64(len(x))
	var sx, sy, sxx, syy, sxy float64
	for i := range x {
		sx, sy = sx+x[i], sy+y[i]
		sxx, syy, sxy = sxx+x[i]*x[i], syy+y[i]*y[i], sxy+x[i]*y[i]
	}
	return (n*sxy - sx*sy) / math.Sqrt((n*sxx-sx*sx)*(n*syy-sy*sy))
}
