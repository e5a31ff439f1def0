package model

import (
	"math"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

func keepFraction(t *testing.T, x *ts.Tensor, p float64, key uint64) ([]float32, float64) {
	t.Helper()
	s := newScope("test")
	defer s.drop()
	m := hashedKeep(s, x, p, key)
	if !s.ok(m) {
		t.Fatal(s.err)
	}
	v, err := tensorkit.Float32s(m)
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, e := range v {
		switch e {
		case 0:
		case float32(1 / (1 - p)):
			kept++
		default:
			t.Fatalf("mask value %v, want 0 or 1/(1-p)", e)
		}
	}
	return v, float64(kept) / float64(len(v))
}

// TestHashedDropoutMasks checks the reproducible masks: the kept fraction is 1−p
// (binomial: 4σ ≈ 0.005 for 64k elements), a key always gives the same mask and
// another key another one.
func TestHashedDropoutMasks(t *testing.T) {
	x, err := ts.Ones([]int64{64, 1024}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Drop()
	for _, p := range []float64{0.1, 0.5} {
		a, fa := keepFraction(t, x, p, 42)
		b, _ := keepFraction(t, x, p, 42)
		c, fc := keepFraction(t, x, p, 43)
		if sd := math.Sqrt(p * (1 - p) / float64(len(a))); math.Abs(fa-(1-p)) > 4*sd || math.Abs(fc-(1-p)) > 4*sd {
			t.Errorf("p = %v: kept fractions %v and %v, want %v ± %v", p, fa, fc, 1-p, 4*sd)
		}
		same, agree := true, 0
		for i := range a {
			same = same && a[i] == b[i]
			if a[i] == c[i] {
				agree++
			}
		}
		if !same {
			t.Errorf("p = %v: the same key gave two masks", p)
		}
		// Independent masks agree on p² + (1−p)² of the elements.
		if want := p*p + (1-p)*(1-p); math.Abs(float64(agree)/float64(len(a))-want) > 0.01 {
			t.Errorf("p = %v: masks of keys 42 and 43 agree on %v of elements, independent ones on %v",
				p, float64(agree)/float64(len(a)), want)
		}
	}
}

// TestHashedDropoutIsSplitmix64 checks the tensor hash against splitmix64 in Go.
func TestHashedDropoutIsSplitmix64(t *testing.T) {
	const n, p, key = 4096, 0.3, uint64(0xfeedface12345678)
	x, err := ts.Ones([]int64{n}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Drop()
	got, _ := keepFraction(t, x, p, key)
	threshold := math.Floor((1 - float64(p)) * (1 << 24))
	for i := range got {
		z := (key + uint64(i)) * 0x9e3779b97f4a7c15
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		kept := z>>40 < uint64(threshold)
		if kept != (got[i] != 0) {
			t.Fatalf("element %d: kept %v, splitmix64 says %v", i, got[i] != 0, kept)
		}
	}
}
