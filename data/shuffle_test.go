package data_test

import (
	"testing"

	"github.com/lrtrain/lrtrain/data"
)

func isPermutation(p []int, n int) bool {
	seen := make([]bool, n)
	for _, v := range p {
		if v < 0 || v >= n || seen[v] {
			return false
		}
		seen[v] = true
	}
	return len(p) == n
}

// Pinned against testdata/permutation_ref.py: a change here would change the order of
// every resumed run.
func TestPermutationMatchesReference(t *testing.T) {
	cases := []struct {
		n     int
		seed  uint64
		epoch int
		want  []int
	}{
		{10, 42, 0, []int{8, 3, 6, 5, 4, 0, 9, 2, 1, 7}},
		{10, 42, 1, []int{4, 9, 2, 1, 6, 0, 8, 3, 5, 7}},
		{16, 7, 3, []int{4, 3, 6, 15, 5, 13, 2, 8, 9, 7, 14, 12, 10, 1, 11, 0}},
	}
	for _, c := range cases {
		if got := data.Permutation(c.n, c.seed, c.epoch); !equalInts(got, c.want) {
			t.Errorf("Permutation(%d, %d, %d) = %v, want %v", c.n, c.seed, c.epoch, got, c.want)
		}
	}
}

func TestPermutationDeterministicAndPerEpoch(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 100, 1000} {
		p := data.Permutation(n, 5, 0)
		if !isPermutation(p, n) || !equalInts(p, data.Permutation(n, 5, 0)) {
			t.Errorf("n=%d: not a repeatable permutation", n)
		}
	}
	e0, e1, other := data.Permutation(1000, 5, 0), data.Permutation(1000, 5, 1), data.Permutation(1000, 6, 0)
	if equalInts(e0, e1) {
		t.Error("epochs 0 and 1 have the same order")
	}
	if !equalInts(e1, other) {
		t.Error("the order depends on seed + epoch: seed 5 epoch 1 must equal seed 6 epoch 0")
	}
	// Each of the 6 orders of 3 elements appears about equally often over epochs.
	counts := map[[3]int]int{}
	const epochs = 6000
	for e := range epochs {
		p := data.Permutation(3, 11, e)
		counts[[3]int{p[0], p[1], p[2]}]++
	}
	for order, c := range counts {
		if c < 850 || c > 1150 { // about 5 standard deviations around 1000
			t.Errorf("order %v appeared %d times in %d epochs", order, c, epochs)
		}
	}
	if len(counts) != 6 {
		t.Errorf("%d distinct orders of 3, want 6", len(counts))
	}
}
