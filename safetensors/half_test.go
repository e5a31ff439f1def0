package safetensors

import (
	"math"
	"sort"
	"testing"
)

// f16Value is an independent reference: the binary16 definition evaluated in float64.
func f16Value(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	switch {
	case e == 0x1f && m == 0:
		return math.Inf(int(sign))
	case e == 0x1f:
		return math.NaN()
	case e == 0:
		return sign * math.Ldexp(m/1024, -14)
	}
	return sign * math.Ldexp(1+m/1024, e-15)
}

func TestF16ToFloat32AllBitPatterns(t *testing.T) {
	for h := 0; h <= 0xffff; h++ {
		got := float64(F16ToFloat32(uint16(h)))
		want := f16Value(uint16(h))
		if !sameFloat(got, want) || math.Signbit(got) != math.Signbit(want) && !math.IsNaN(want) {
			t.Fatalf("F16ToFloat32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestBF16ToFloat32AllBitPatterns(t *testing.T) {
	for h := 0; h <= 0xffff; h++ {
		sign, e, m := 1.0, h>>7&0xff, float64(h&0x7f)
		if h&0x8000 != 0 {
			sign = -1
		}
		var want float64
		switch {
		case e == 0xff && m == 0:
			want = math.Inf(int(sign))
		case e == 0xff:
			want = math.NaN()
		case e == 0:
			want = sign * math.Ldexp(m/128, -126)
		default:
			want = sign * math.Ldexp(1+m/128, e-127)
		}
		if got := float64(BF16ToFloat32(uint16(h))); !sameFloat(got, want) || math.Signbit(got) != math.Signbit(want) && !math.IsNaN(want) {
			t.Fatalf("BF16ToFloat32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

// f16Finite lists every non-negative finite binary16 value in increasing order (the bit
// patterns 0x0000..0x7bff are monotonic).
var f16Finite = func() []float64 {
	v := make([]float64, 0x7c00)
	for h := range v {
		v[h] = f16Value(uint16(h))
	}
	return v
}()

// refToF16 rounds x to binary16 by searching the table of values: nearest wins, a tie
// goes to the even bit pattern, and magnitudes from 65520 (halfway to 2^16) up overflow.
func refToF16(x float32) uint16 {
	var sign uint16
	a := float64(x)
	if math.Signbit(a) {
		sign, a = 0x8000, -a
	}
	if a >= 65520 {
		return sign | 0x7c00
	}
	i := sort.SearchFloat64s(f16Finite, a) // first index with value >= a
	if i < len(f16Finite) && f16Finite[i] == a {
		return sign | uint16(i)
	}
	if i == len(f16Finite) { // between 65504 and 65520
		return sign | 0x7bff
	}
	lo, hi := i-1, i
	dlo, dhi := a-f16Finite[lo], f16Finite[hi]-a
	if dlo < dhi || (dlo == dhi && lo%2 == 0) {
		return sign | uint16(lo)
	}
	return sign | uint16(hi)
}

func TestFloat32ToF16AgainstReference(t *testing.T) {
	check := func(x float32) {
		if got, want := Float32ToF16(x), refToF16(x); got != want {
			t.Fatalf("Float32ToF16(%g [%#08x]) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
	// Every halfway point between neighbouring binary16 values, and one float32 ulp either
	// side of it, in both signs (midpoints have at most 12 significant bits: exact).
	for h := 0; h < 0x7bff; h++ {
		mid := float32((f16Finite[h] + f16Finite[h+1]) / 2)
		for _, x := range []float32{mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, 1e9), float32(f16Finite[h])} {
			check(x)
			check(-x)
		}
	}
	// A sweep over float32 bit patterns from far below the subnormals to past the maximum.
	for b := uint32(0x30000000); b < 0x48000000; b += 997 {
		check(math.Float32frombits(b))
		check(-math.Float32frombits(b))
	}
	for _, x := range []float32{0, 65519.996, 65520, 65536, 1e30, float32(math.Inf(1)), math.Float32frombits(1)} {
		check(x)
		check(-x)
	}
	if h := Float32ToF16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("Float32ToF16(NaN) = %#04x, not a NaN", h)
	}
}

// refToBF16 rounds x to bfloat16 from the two bfloat16 neighbours of x, compared in
// float64; the neighbour above the largest finite value counts as 2^128 (overflow).
func refToBF16(x float32) uint16 {
	b := math.Float32bits(x)
	sign, mag := b&0x80000000, b&0x7fffffff
	lo := mag &^ 0xffff
	hi := lo + 0x10000
	a := math.Abs(float64(x))
	loV := float64(math.Float32frombits(lo))
	hiV := math.Ldexp(1, 128)
	if hi < 0x7f800000 {
		hiV = float64(math.Float32frombits(hi))
	}
	pick := lo
	if dlo, dhi := a-loV, hiV-a; dhi < dlo || (dlo == dhi && (lo>>16)&1 == 1) {
		pick = hi
	}
	return uint16((sign | pick) >> 16)
}

func TestFloat32ToBF16AgainstReference(t *testing.T) {
	check := func(x float32) {
		if got, want := Float32ToBF16(x), refToBF16(x); got != want {
			t.Fatalf("Float32ToBF16(%g [%#08x]) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
	for b := uint32(0); b < 0x7f800000; b += 9973 {
		x := math.Float32frombits(b)
		check(x)
		check(-x)
		tie := math.Float32frombits(b&^0xffff | 0x8000) // exactly halfway
		check(tie)
		check(-tie)
		check(math.Nextafter32(tie, 0))
		check(math.Nextafter32(tie, float32(math.Inf(1))))
	}
	check(math.MaxFloat32)
	check(math.Float32frombits(0x7f7f8000)) // halfway to overflow: ties to even = inf
	for _, x := range []float32{float32(math.NaN()), -float32(math.NaN())} {
		if h := Float32ToBF16(x); BF16ToFloat32(h) == BF16ToFloat32(h) || (h&0x8000 != 0) != math.Signbit(float64(x)) {
			t.Errorf("Float32ToBF16(%v) = %#04x, want a NaN of the same sign", x, h)
		}
	}
	if h := Float32ToBF16(float32(math.Inf(-1))); h != 0xff80 {
		t.Errorf("Float32ToBF16(-Inf) = %#04x, want 0xff80", h)
	}
}

func TestHalfRoundTripIsExact(t *testing.T) {
	for h := 0; h <= 0xffff; h++ {
		if x := F16ToFloat32(uint16(h)); !isNaN32(x) && Float32ToF16(x) != uint16(h) {
			t.Fatalf("F16 %#04x -> %v -> %#04x", h, x, Float32ToF16(x))
		}
		if x := BF16ToFloat32(uint16(h)); !isNaN32(x) && Float32ToBF16(x) != uint16(h) {
			t.Fatalf("BF16 %#04x -> %v -> %#04x", h, x, Float32ToBF16(x))
		}
	}
}
