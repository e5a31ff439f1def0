package metrics

import (
	"fmt"
	"math"
	"slices"
)

// Confusion is the confusion matrix of a single-label classification.
type Confusion struct {
	// Labels are the classes that occur in gold or pred, ascending.
	Labels []int
	// Counts[i][j] counts examples with gold Labels[i] predicted as Labels[j].
	Counts [][]int64
}

// NewConfusion counts gold against pred (gold first, as scikit-learn's y_true, y_pred).
func NewConfusion(gold, pred []int) (*Confusion, error) {
	if err := pair(len(gold), len(pred)); err != nil {
		return nil, err
	}
	index := map[int]int{}
	for _, l := range append(append([]int(nil), gold...), pred...) {
		index[l] = 0
	}
	labels := make([]int, 0, len(index))
	for l := range index {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	for i, l := range labels {
		index[l] = i
	}
	c := &Confusion{Labels: labels, Counts: make([][]int64, len(labels))}
	for i := range c.Counts {
		c.Counts[i] = make([]int64, len(labels))
	}
	for k := range gold {
		c.Counts[index[gold[k]]][index[pred[k]]]++
	}
	return c, nil
}

func pair(n, m int) error {
	if n != m {
		return fmt.Errorf("%w: %d gold, %d predicted", ErrLength, n, m)
	}
	if n == 0 {
		return ErrEmpty
	}
	return nil
}

// classCounts returns, per label, true positives, false positives and false negatives.
func (c *Confusion) classCounts() (tp, fp, fn []float64) {
	k := len(c.Labels)
	tp, fp, fn = make([]float64, k), make([]float64, k), make([]float64, k)
	for i := range k {
		for j := range k {
			n := float64(c.Counts[i][j])
			if i == j {
				tp[i] += n
			} else {
				fn[i] += n // gold i, predicted j
				fp[j] += n // predicted j, gold i
			}
		}
	}
	return tp, fp, fn
}

// f1 is 2tp/(2tp+fp+fn), and 0 when the class occurs in neither gold nor pred
// (scikit-learn's zero_division=0).
func f1(tp, fp, fn float64) float64 {
	if d := 2*tp + fp + fn; d > 0 {
		return 2 * tp / d
	}
	return 0
}

// Accuracy is the fraction of examples with pred equal to gold.
func Accuracy(gold, pred []int) (float64, error) {
	if err := pair(len(gold), len(pred)); err != nil {
		return 0, fmt.Errorf("accuracy: %w", err)
	}
	right := 0
	for i := range gold {
		if gold[i] == pred[i] {
			right++
		}
	}
	return float64(right) / float64(len(gold)), nil
}

// F1Macro is the unweighted mean of the per-class F1 scores over the classes that occur
// in gold or pred (scikit-learn's f1_score(average="macro")).
func F1Macro(gold, pred []int) (float64, error) {
	c, err := NewConfusion(gold, pred)
	if err != nil {
		return 0, fmt.Errorf("macro F1: %w", err)
	}
	tp, fp, fn := c.classCounts()
	sum := 0.0
	for i := range tp {
		sum += f1(tp[i], fp[i], fn[i])
	}
	return sum / float64(len(tp)), nil
}

// F1Micro is F1 over the pooled counts of all classes; for single-label classification it
// equals the accuracy (scikit-learn's f1_score(average="micro")).
func F1Micro(gold, pred []int) (float64, error) {
	c, err := NewConfusion(gold, pred)
	if err != nil {
		return 0, fmt.Errorf("micro F1: %w", err)
	}
	tp, fp, fn := c.classCounts()
	var t, p, n float64
	for i := range tp {
		t, p, n = t+tp[i], p+fp[i], n+fn[i]
	}
	return f1(t, p, n), nil
}

// F1Binary is the F1 score of the class positive against all others (scikit-learn's
// f1_score(average="binary", pos_label=positive)); 0 when positive occurs in neither gold
// nor pred.
func F1Binary(gold, pred []int, positive int) (float64, error) {
	if err := pair(len(gold), len(pred)); err != nil {
		return 0, fmt.Errorf("binary F1: %w", err)
	}
	var tp, fp, fn float64
	for i := range gold {
		switch g, p := gold[i] == positive, pred[i] == positive; {
		case g && p:
			tp++
		case p:
			fp++
		case g:
			fn++
		}
	}
	return f1(tp, fp, fn), nil
}

// MCC is the Matthews correlation coefficient, for two or more classes in Gorodkin's
// generalisation (as scikit-learn's matthews_corrcoef): with C the confusion matrix,
// t_k and p_k the gold and predicted counts of class k, c = Σ C_kk and s = N,
//
//	MCC = (c·s − Σ t_k p_k) / √((s² − Σ p_k²)(s² − Σ t_k²))
//
// For two classes this is (TP·TN − FP·FN)/√((TP+FP)(TP+FN)(TN+FP)(TN+FN)). When either
// factor under the root is 0 — all predictions, or all gold labels, are one class — MCC is
// 0 (scikit-learn's convention), not NaN.
func MCC(gold, pred []int) (float64, error) {
	c, err := NewConfusion(gold, pred)
	if err != nil {
		return 0, fmt.Errorf("MCC: %w", err)
	}
	k := len(c.Labels)
	t, p := make([]float64, k), make([]float64, k)
	var correct, s float64
	for i := range k {
		for j := range k {
			n := float64(c.Counts[i][j])
			t[i] += n
			p[j] += n
			s += n
			if i == j {
				correct += n
			}
		}
	}
	var tp, pp, tt float64
	for i := range k {
		tp += t[i] * p[i]
		pp += p[i] * p[i]
		tt += t[i] * t[i]
	}
	cov := correct*s - tp
	den := (s*s - pp) * (s*s - tt)
	if den == 0 {
		return 0, nil
	}
	return math.Max(-1, math.Min(1, cov/math.Sqrt(den))), nil
}
