package data

import "math/bits"

// Permutation returns a permutation of 0..n-1 that depends only on n and seed + epoch, so
// every rank computes the same order for an epoch and every epoch has its own (like
// PyTorch's DistributedSampler, which seeds each epoch with seed + epoch).
//
// The generator is SplitMix64 and the shuffle Fisher–Yates with unbiased bounded draws,
// both written out here: the order must never change under a resumed run, so it cannot
// depend on the standard library's generators, whose streams are not promised stable.
func Permutation(n int, seed uint64, epoch int) []int {
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	rng := splitMix64{state: seed + uint64(epoch)}
	for i := n - 1; i > 0; i-- {
		j := int(rng.below(uint64(i + 1)))
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm
}

// splitMix64 is Steele, Lea and Flood's SplitMix64 generator.
type splitMix64 struct{ state uint64 }

func (r *splitMix64) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below returns a uniform value in [0, n), n > 0, by Lemire's multiply-and-reject method.
func (r *splitMix64) below(n uint64) uint64 {
	hi, lo := bits.Mul64(r.next(), n)
	if lo < n {
		threshold := -n % n
		for lo < threshold {
			hi, lo = bits.Mul64(r.next(), n)
		}
	}
	return hi
}
