package data

import "testing"

// The first outputs of SplitMix64 seeded with 0, as published with the reference C
// implementation (Vigna, splitmix64.c).
func TestSplitMix64ReferenceOutputs(t *testing.T) {
	r := splitMix64{}
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f, 0xf88bb8a8724c81ec} {
		if got := r.next(); got != want {
			t.Errorf("output %d = %#x, want %#x", i, got, want)
		}
	}
}

// below must be uniform: counts of below(3) over many draws stay near a third each.
func TestBelowIsUniform(t *testing.T) {
	r := splitMix64{state: 1}
	var counts [3]int
	const draws = 30000
	for range draws {
		counts[r.below(3)]++
	}
	for v, c := range counts {
		if c < draws/3-500 || c > draws/3+500 { // about 6 standard deviations
			t.Errorf("below(3) gave %d %d times of %d", v, c, draws)
		}
	}
}
