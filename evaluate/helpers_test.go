package evaluate_test

import (
	"math"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/evaluate"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/tokenizer"
)

// tiny writes and loads a tiny random model of arch (numLabels for classifiers) and its
// tokenizer.
func tiny(t *testing.T, arch string, numLabels int) (*model.Model, *tokenizer.Tokenizer) {
	t.Helper()
	return tinyWith(t, arch, numLabels, 5, 0.1)
}

// tinyWith is tiny with the weights' seed and standard deviation.
func tinyWith(t *testing.T, arch string, numLabels int, tinySeed uint64, tinyStd float64) (*model.Model, *tokenizer.Tokenizer) {
	t.Helper()
	dir := tinymodel.Write(t, hfinit.Options{Arch: arch, Preset: "tiny", Seed: tinySeed, NumLabels: numLabels,
		InitStd: tinyStd, Perturb: true})
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

func pipeline(t *testing.T, tok data.Tokenizer, maxLen int) *evaluate.Pipeline {
	t.Helper()
	p, err := evaluate.NewPipeline(tok, data.BuildConfig{MaxLen: maxLen})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, format data.Format, file string, labels ...string) []data.Record {
	t.Helper()
	ds, err := data.Read(data.ReadConfig{Format: format, Paths: []string{filepath.Join("..", "data", "testdata", file)}, Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	return ds.Records
}

// hostLogits runs m on one unpadded sequence and returns its T×V logits as float64 rows.
func hostLogits(t *testing.T, m *model.Model, ids []int) [][]float64 {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	seq := make([]int64, len(ids))
	for i, id := range ids {
		seq[i] = int64(id)
	}
	x, err := model.Int64Tensor(seq, 1, int64(len(seq)))
	if err != nil {
		t.Fatal(err)
	}
	defer x.MustDrop()
	var rows [][]float64
	ts.NoGrad(func() {
		y, err := m.Forward(model.Inputs{InputIDs: x})
		if err != nil {
			t.Fatal(err)
		}
		defer y.MustDrop()
		shape := y.MustSize()
		flat := y.MustToDevice(gotch.CPU, gotch.Double, false, false, false)
		defer flat.MustDrop()
		vals := flat.Float64Values()
		width := int(shape[len(shape)-1])
		for i := 0; i+width <= len(vals); i += width {
			rows = append(rows, vals[i:i+width])
		}
	})
	return rows
}

// logSoftmaxAt is log softmax(row)[k], computed in float64 with the max shifted out.
func logSoftmaxAt(row []float64, k int) float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, v)
	}
	sum := 0.0
	for _, v := range row {
		sum += math.Exp(v - mx)
	}
	return row[k] - mx - math.Log(sum)
}

// labelNLL is −Σ log p(ids[t] | ids[<t]) over the positions t whose label is set,
// each sequence run alone (no padding).
func labelNLL(t *testing.T, m *model.Model, ex data.Example) (float64, int) {
	t.Helper()
	rows := hostLogits(t, m, ex.InputIDs)
	nll, n := 0.0, 0
	for pos := 1; pos < len(ex.InputIDs); pos++ {
		if ex.Labels[pos] != data.IgnoreIndex {
			nll -= logSoftmaxAt(rows[pos-1], ex.Labels[pos])
			n++
		}
	}
	return nll, n
}

// eps32 is float32's machine epsilon, 2^-23.
const eps32 = 1.0 / (1 << 23)

// labelNLLBound is labelNLL with a bound on how far a float32 evaluation of the same
// sum may stray from it. Each term log p = logit − logsumexp(row) comes from float32
// logits that the evaluation computes with other shapes (padded batches, so another
// blocking of every matmul and reduction) and hence other roundings. A float32 result
// carries about eps32 of relative rounding per operation; allowing 16 of them along the
// tiny models' path to a logit (embedding, two blocks of norms, matmuls and residual
// adds, the head, the log-softmax), a term may move by 16·eps32·(max|logit| + |log p|),
// and the sum by the sum of those. Measured differences are below 1/20 of it.
func labelNLLBound(t *testing.T, m *model.Model, ex data.Example) (nll float64, n int, bound float64) {
	t.Helper()
	rows := hostLogits(t, m, ex.InputIDs)
	for pos := 1; pos < len(ex.InputIDs); pos++ {
		if ex.Labels[pos] == data.IgnoreIndex {
			continue
		}
		lp := logSoftmaxAt(rows[pos-1], ex.Labels[pos])
		nll -= lp
		n++
		bound += 16 * eps32 * (maxAbs(rows[pos-1]) + math.Abs(lp))
	}
	return nll, n, bound
}

func maxAbs(row []float64) float64 {
	m := 0.0
	for _, v := range row {
		m = math.Max(m, math.Abs(v))
	}
	return m
}

// clearArgmax is the argmax of a row of float32 logits, which the code under test
// computes with other shapes and hence other roundings: it fails the test unless the
// best logit beats every other by more than twice the bound of labelNLLBound's
// reasoning, 16·eps32·max|logit| each, so that rounding cannot decide it.
func clearArgmax(t *testing.T, row []float64, what string) int {
	t.Helper()
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	tol := 2 * 16 * eps32 * maxAbs(row)
	for i, v := range row {
		if i != best && row[best]-v <= tol {
			t.Fatalf("%s: logits %d and %d within %.2g of each other, a tie that rounding decides; pick another seed or input",
				what, best, i, tol)
		}
	}
	return best
}

func near(a, b, rel float64) bool { return math.Abs(a-b) <= rel*(1+math.Abs(b)) }
