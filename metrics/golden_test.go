package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"testing"
)

// golden is metrics_golden.json, written by testdata/metrics_ref.py (plain Python, from
// the definitions). Regenerate from the repository root with
//
//	/usr/bin/python3 metrics/testdata/metrics_ref.py > metrics/testdata/metrics_golden.json
type golden struct {
	Version        int
	Classification []struct {
		Name       string
		Gold, Pred []int
		Accuracy   float64
		F1Macro    float64 `json:"f1_macro"`
		F1Micro    float64 `json:"f1_micro"`
		F1Binary   float64 `json:"f1_binary"`
		MCC        float64
	}
	Correlation []struct {
		Name              string
		X, Y              []float64
		RanksX            []float64 `json:"ranks_x"`
		Pearson, Spearman *float64  // null: NaN (constant input)
	}
	Perplexity []struct {
		SumNLL     float64 `json:"sum_nll"`
		Tokens     int64
		Perplexity float64
	}
	Answers []struct {
		Text, Answer string
		Set          []string
	}
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/metrics_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	if g.Version != 1 {
		t.Fatalf("golden version %d, want 1; regenerate with /usr/bin/python3 metrics/testdata/metrics_ref.py", g.Version)
	}
	return g
}

// closeTo reports |got − want| ≤ 1e-12 (both sides are float64 sums of at most a few
// hundred terms, computed in different orders).
func closeTo(got, want float64) bool { return math.Abs(got-want) <= 1e-12 }

func TestClassificationAgainstPython(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.Classification {
		type metric struct {
			name string
			f    func() (float64, error)
			want float64
		}
		for _, m := range []metric{
			{"accuracy", func() (float64, error) { return Accuracy(c.Gold, c.Pred) }, c.Accuracy},
			{"macro F1", func() (float64, error) { return F1Macro(c.Gold, c.Pred) }, c.F1Macro},
			{"micro F1", func() (float64, error) { return F1Micro(c.Gold, c.Pred) }, c.F1Micro},
			{"binary F1", func() (float64, error) { return F1Binary(c.Gold, c.Pred, 1) }, c.F1Binary},
			{"MCC", func() (float64, error) { return MCC(c.Gold, c.Pred) }, c.MCC},
		} {
			got, err := m.f()
			if err != nil || !closeTo(got, m.want) {
				t.Errorf("%s: %s = %.17g, %v; python %.17g", c.Name, m.name, got, err, m.want)
			}
		}
	}
}

func TestCorrelationAgainstPython(t *testing.T) {
	g := loadGolden(t)
	for _, c := range g.Correlation {
		for _, m := range []struct {
			name string
			f    func([]float64, []float64) (float64, error)
			want *float64
		}{{"pearson", Pearson, c.Pearson}, {"spearman", Spearman, c.Spearman}} {
			got, err := m.f(c.X, c.Y)
			switch {
			case err != nil:
				t.Errorf("%s: %s: %v", c.Name, m.name, err)
			case m.want == nil && !math.IsNaN(got):
				t.Errorf("%s: %s = %v, python gives NaN", c.Name, m.name, got)
			case m.want != nil && !closeTo(got, *m.want):
				t.Errorf("%s: %s = %.17g, python %.17g", c.Name, m.name, got, *m.want)
			}
		}
		ranks := Ranks(c.X)
		for i := range ranks {
			if ranks[i] != c.RanksX[i] {
				t.Errorf("%s: Ranks = %v, python %v", c.Name, ranks, c.RanksX)
				break
			}
		}
	}
}

func TestPerplexityAgainstPython(t *testing.T) {
	for _, c := range loadGolden(t).Perplexity {
		got, err := Perplexity(c.SumNLL, c.Tokens)
		if err != nil || math.Abs(got-c.Perplexity) > 1e-12*c.Perplexity {
			t.Errorf("Perplexity(%v, %d) = %v, %v; python %v", c.SumNLL, c.Tokens, got, err, c.Perplexity)
		}
	}
}

func TestExtractAnswerAgainstPython(t *testing.T) {
	for _, c := range loadGolden(t).Answers {
		got, ok := ExtractAnswer(c.Text, c.Set)
		if got != c.Answer || ok != (c.Answer != "") {
			t.Errorf("ExtractAnswer(%q) = %q, %v; python regex %q", c.Text, got, ok, c.Answer)
		}
	}
}

// TestGoldenIsUpToDate reruns the Python reference and compares its output with the
// committed file, so that an edit of either is noticed: the same keys, strings and
// lengths, and numbers within closeTo's 1e-12 (Python 3.12 made sum() compensated, so
// 3.11 and 3.13 differ in the last bits of sums; an edit moves far more than that).
func TestGoldenIsUpToDate(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("no", python)
	}
	out, err := exec.Command(python, "testdata/metrics_ref.py").Output()
	if err != nil {
		t.Fatalf("metrics_ref.py: %v", err)
	}
	committed, err := os.ReadFile("testdata/metrics_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var fresh, old any
	if err := json.Unmarshal(out, &fresh); err != nil {
		t.Fatalf("metrics_ref.py output: %v", err)
	}
	if err := json.Unmarshal(committed, &old); err != nil {
		t.Fatalf("testdata/metrics_golden.json: %v", err)
	}
	if where := jsonDiff(fresh, old, "$"); where != "" {
		t.Errorf("testdata/metrics_golden.json is stale at %s; regenerate with\n"+
			"  /usr/bin/python3 metrics/testdata/metrics_ref.py > metrics/testdata/metrics_golden.json", where)
	}
}

// jsonDiff returns the path of the first difference between two decoded JSON
// values (numbers compared with closeTo), or "".
func jsonDiff(a, b any, path string) string {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return path
		}
		for k, v := range a {
			if d := jsonDiff(v, bm[k], path+"."+k); d != "" {
				return d
			}
		}
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return path
		}
		for i := range a {
			if d := jsonDiff(a[i], bs[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
	case float64:
		if bf, ok := b.(float64); !ok || !closeTo(a, bf) {
			return path
		}
	default:
		if a != b {
			return path
		}
	}
	return ""
}

func TestJSONDiffFindsEdits(t *testing.T) {
	var a, b, c any
	for p, s := range map[*any]string{
		&a: `{"x": [1, 0.5387128002051480, "s"], "y": null}`,
		&b: `{"x": [1, 0.5387128002051464, "s"], "y": null}`, // last bits: same
		&c: `{"x": [1, 0.53871, "s"], "y": null}`,            // an edit
	} {
		if err := json.Unmarshal([]byte(s), p); err != nil {
			t.Fatal(err)
		}
	}
	if d := jsonDiff(a, b, "$"); d != "" {
		t.Errorf("last-bit difference reported at %s", d)
	}
	if d := jsonDiff(a, c, "$"); d != "$.x[1]" {
		t.Errorf("edit reported at %q, want $.x[1]", d)
	}
}
