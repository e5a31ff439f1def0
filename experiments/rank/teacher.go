package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
)

// powerLawFactors sets a LoRA adapter's A (R×d_in) and B (d_out×R) so that
// B·A = U·diag(σ)·Vᵀ with n = min(d_out, d_in, R) orthonormal directions U (columns)
// and V (rows of A), drawn from rng, and σ_i = 1/i: a full-rank update whose spectrum
// decays like a power law. The caller rescales B to the wanted norm.
func powerLawFactors(a, b *ts.Tensor, rng *rand.Rand) error {
	as, err := a.Size()
	if err != nil {
		return err
	}
	bs, err := b.Size()
	if err != nil {
		return err
	}
	r, dIn, dOut := int(as[0]), int(as[1]), int(bs[0])
	n := min(r, dIn, dOut)
	v := orthonormalRows(rng, n, dIn)  // rows of A
	u := orthonormalRows(rng, n, dOut) // columns of B
	av := make([]float32, r*dIn)
	bv := make([]float32, dOut*r)
	for i := 0; i < n; i++ {
		sigma := 1 / float64(i+1)
		for j := 0; j < dIn; j++ {
			av[i*dIn+j] = float32(v[i][j])
		}
		for j := 0; j < dOut; j++ {
			bv[j*r+i] = float32(sigma * u[i][j])
		}
	}
	if err := tensorkit.SetFloat32s(a, av); err != nil {
		return fmt.Errorf("power-law teacher A: %w", err)
	}
	if err := tensorkit.SetFloat32s(b, bv); err != nil {
		return fmt.Errorf("power-law teacher B: %w", err)
	}
	return nil
}

// orthonormalRows returns n ≤ d orthonormal vectors of length d: standard normal draws
// orthonormalised by modified Gram–Schmidt (redrawn in the measure-zero event that a
// draw is dependent on the previous ones).
func orthonormalRows(rng *rand.Rand, n, d int) [][]float64 {
	out := make([][]float64, 0, n)
	for len(out) < n {
		x := make([]float64, d)
		for j := range x {
			x[j] = rng.NormFloat64()
		}
		for pass := 0; pass < 2; pass++ { // twice is enough for float64 orthogonality
			for _, q := range out {
				dot := 0.0
				for j := range x {
					dot += x[j] * q[j]
				}
				for j := range x {
					x[j] -= dot * q[j]
				}
			}
		}
		norm := 0.0
		for _, e := range x {
			norm += e * e
		}
		norm = math.Sqrt(norm)
		if norm < 1e-8 {
			continue
		}
		for j := range x {
			x[j] /= norm
		}
		out = append(out, x)
	}
	return out
}
