package metrics

import (
	"errors"
	"math"
	"testing"
)

// A 3-class example worked by hand:
//
//	gold 0 0 0 1 1 2 2 2
//	pred 0 0 1 1 2 2 2 0
//
// confusion (rows gold):   [2 1 0; 0 1 1; 1 0 2]
// class 0: tp 2 fp 1 fn 1 → F1 4/6;  class 1: tp 1 fp 1 fn 1 → 2/4;  class 2: tp 2 fp 1 fn 1 → 4/6
// accuracy 5/8; macro F1 (2/3 + 1/2 + 2/3)/3 = 11/18; micro F1 = accuracy = 5/8
// MCC: t = (3,2,3), p = (3,2,3), c = 5, s = 8: (5·8 − 22)/√((64−22)(64−22)) = 18/42 = 3/7
var (
	handGold = []int{0, 0, 0, 1, 1, 2, 2, 2}
	handPred = []int{0, 0, 1, 1, 2, 2, 2, 0}
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-15 }

func TestClassificationByHand(t *testing.T) {
	check := func(name string, got float64, err error, want float64) {
		t.Helper()
		if err != nil || !near(got, want) {
			t.Errorf("%s = %v, %v; want %v", name, got, err, want)
		}
	}
	a, err := Accuracy(handGold, handPred)
	check("accuracy", a, err, 5.0/8)
	f, err := F1Macro(handGold, handPred)
	check("macro F1", f, err, 11.0/18)
	f, err = F1Micro(handGold, handPred)
	check("micro F1", f, err, 5.0/8)
	f, err = F1Binary(handGold, handPred, 1)
	check("F1 of class 1", f, err, 0.5)
	m, err := MCC(handGold, handPred)
	check("MCC", m, err, 3.0/7)

	c, err := NewConfusion(handGold, handPred)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int64{{2, 1, 0}, {0, 1, 1}, {1, 0, 2}}
	for i := range want {
		for j := range want[i] {
			if c.Counts[i][j] != want[i][j] {
				t.Fatalf("confusion %v, want %v", c.Counts, want)
			}
		}
	}
}

func TestBinaryMCCMatchesTheTwoByTwoFormula(t *testing.T) {
	// TP 3, TN 4, FP 2, FN 1: (12 − 2)/√(5·4·6·5) = 10/√600.
	gold := []int{1, 1, 1, 0, 0, 0, 0, 0, 0, 1}
	pred := []int{1, 1, 1, 0, 0, 0, 0, 1, 1, 0}
	m, err := MCC(gold, pred)
	if want := 10 / math.Sqrt(600); err != nil || !near(m, want) {
		t.Errorf("MCC = %v, %v; want %v", m, err, want)
	}
	// Labels other than 0/1 give the same value.
	g2, p2 := make([]int, len(gold)), make([]int, len(pred))
	for i := range gold {
		g2[i], p2[i] = 5+2*gold[i], 5+2*pred[i]
	}
	if m2, _ := MCC(g2, p2); !near(m, m2) {
		t.Errorf("MCC with labels 5/7 = %v, with 0/1 %v", m2, m)
	}
}

func TestClassificationEdgeCases(t *testing.T) {
	// Constant predictions: MCC is 0, not NaN.
	if m, err := MCC([]int{0, 1, 1, 0}, []int{1, 1, 1, 1}); err != nil || m != 0 {
		t.Errorf("MCC with constant predictions = %v, %v; want 0", m, err)
	}
	// Constant gold too.
	if m, err := MCC([]int{1, 1}, []int{1, 1}); err != nil || m != 0 {
		t.Errorf("MCC of one class = %v, %v; want 0", m, err)
	}
	// Perfect and perfectly inverted.
	if m, _ := MCC([]int{0, 1, 2, 0}, []int{0, 1, 2, 0}); m != 1 {
		t.Errorf("MCC perfect = %v", m)
	}
	if m, _ := MCC([]int{0, 1, 1, 0}, []int{1, 0, 0, 1}); m != -1 {
		t.Errorf("MCC inverted = %v", m)
	}
	// A positive class in neither: F1 0.
	if f, err := F1Binary([]int{0, 0}, []int{0, 0}, 1); err != nil || f != 0 {
		t.Errorf("F1 with no positives = %v, %v", f, err)
	}
	// Empty and mismatched inputs.
	for name, f := range map[string]func([]int, []int) (float64, error){
		"accuracy": Accuracy, "macro F1": F1Macro, "micro F1": F1Micro, "MCC": MCC,
		"binary F1": func(g, p []int) (float64, error) { return F1Binary(g, p, 1) },
	} {
		if _, err := f(nil, nil); !errors.Is(err, ErrEmpty) {
			t.Errorf("%s(empty) error = %v, want ErrEmpty", name, err)
		}
		if _, err := f([]int{1}, []int{1, 0}); !errors.Is(err, ErrLength) {
			t.Errorf("%s(1 vs 2) error = %v, want ErrLength", name, err)
		}
	}
}
