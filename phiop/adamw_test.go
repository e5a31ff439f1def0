package phiop

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
)

// adamwCase is one entry of a test list as float64 values (rounded to the
// tensor dtype when the tensors are made) plus its step and learning rate.
type adamwCase struct {
	p, g, m, v []float64
	step       int64
	lr         float64
}

// randomAdamWCases makes entries of the given sizes: gradients spanning 1e-9
// (where ε dominates) to 10, moments as after earlier steps, steps from 1 (a
// fresh state, zero moments) to 1000, learning rates including 0 (a frozen group).
func randomAdamWCases(rng *rand.Rand, sizes []int) []adamwCase {
	steps := []int64{1, 2, 7, 1000}
	lrs := []float64{1e-3, 0.05, 0, 3e-4}
	out := make([]adamwCase, len(sizes))
	for i, n := range sizes {
		c := adamwCase{make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), steps[i%len(steps)], lrs[i%len(lrs)]}
		for j := range n {
			scale := math.Pow(10, float64(rng.IntN(11)-9)) // 1e-9 … 10
			c.p[j] = rng.NormFloat64()
			c.g[j] = rng.NormFloat64() * scale
			if c.step > 1 { // step 1 starts from the zero moments of a new state
				c.m[j] = rng.NormFloat64() * scale * 0.3
				c.v[j] = math.Abs(rng.NormFloat64()) * scale * scale
			}
		}
		out[i] = c
	}
	return out
}

// adamwTensors makes the entries' tensors in dtype and reads their stored values
// back, so that the reference starts from exactly what the op sees.
func adamwTensors(t *testing.T, cases []adamwCase, dtype gotch.DType) ([]AdamWEntry, []adamwCase) {
	t.Helper()
	list := make([]AdamWEntry, len(cases))
	stored := make([]adamwCase, len(cases))
	for i, c := range cases {
		shape := []int64{int64(len(c.p))}
		e := AdamWEntry{
			Param: newTensor(t, c.p, shape, dtype, false), Grad: newTensor(t, c.g, shape, dtype, false),
			ExpAvg: newTensor(t, c.m, shape, dtype, false), ExpAvgSq: newTensor(t, c.v, shape, dtype, false),
			Step: c.step, LR: c.lr,
		}
		list[i] = e
		stored[i] = adamwCase{values(e.Param), values(e.Grad), values(e.ExpAvg), values(e.ExpAvgSq), c.step, c.lr}
	}
	return list, stored
}

// adamwReference is one AdamW step of one element in float64 with exact
// coefficients (the formula as torch.optim.AdamW documents it), and errP, errM,
// errV bound how far an implementation in a format of unit roundoff u may lie
// from it. The bound is first order in u: each rounded operation or coefficient
// adds u times the magnitude it rounds,
//
//	m′ = lerp(m, g, 1 − β1):  E_m ≤ u(|m′| + 4(|g| + |m|))  (a subtraction, a rounded
//	                          weight, a product and a sum)
//	v′ = lerp(v, g², 1 − β2): E_v ≤ u(|v′| + 5(g² + v))     (one more for g²)
//	√v′:                      E_s ≤ min(E_v/(2√v′), √E_v) + u√v′
//	D = (√v′ + ε√bc2)/(lr/bc1·√bc2): relative δD ≤ (E_s + u·ε√bc2)/(√v′ + ε√bc2) + 3u
//	                          (a rounded ε term, the sum, a rounded factor and a product)
//	U = m′/D:                 E_U ≤ E_m/D + |U|(δD + u)
//	p′ = p·(1 − lr·λ) − U:    E_p ≤ 2u|p| + u|p′| + E_U
//
// and each bound is doubled to cover the second-order terms and FMA
// contraction (one rounding where the sum of products above counts two).
func adamwReference(c adamwCase, j int, h AdamWHyper, u float64) (p, m, v, errP, errM, errV float64) {
	t := float64(c.step)
	bc1, bc2 := 1-math.Pow(h.Beta1, t), 1-math.Pow(h.Beta2, t)
	g := c.g[j]
	m = h.Beta1*c.m[j] + (1-h.Beta1)*g
	v = h.Beta2*c.v[j] + (1-h.Beta2)*g*g
	p = c.p[j] * (1 - c.lr*h.WeightDecay)
	decayed := math.Abs(p)
	var eU float64
	eM := u * (math.Abs(m) + 4*(math.Abs(g)+math.Abs(c.m[j])))
	eV := u * (math.Abs(v) + 5*(g*g+c.v[j]))
	if c.lr != 0 {
		sq, epsTerm := math.Sqrt(v), h.Eps*math.Sqrt(bc2)
		stepSize := c.lr / bc1
		d := (sq + epsTerm) / (stepSize * math.Sqrt(bc2))
		upd := m / d
		p -= upd
		eS := math.Sqrt(eV) + u*sq
		if sq > 0 {
			eS = math.Min(eV/(2*sq), math.Sqrt(eV)) + u*sq
		}
		deltaD := (eS+u*epsTerm)/(sq+epsTerm) + 3*u
		eU = eM/d + math.Abs(upd)*(deltaD+u)
	}
	errP = 2 * (2*u*decayed + u*math.Abs(p) + eU)
	return p, m, v, errP, 2 * eM, 2 * eV
}

// checkAdamW compares every entry after a step with the float64 reference.
func checkAdamW(t *testing.T, list []AdamWEntry, start []adamwCase, h AdamWHyper, dtype gotch.DType) {
	t.Helper()
	u := unitRoundoff(dtype)
	for i, e := range list {
		gotP, gotM, gotV := values(e.Param), values(e.ExpAvg), values(e.ExpAvgSq)
		for j := range gotP {
			p, m, v, eP, eM, eV := adamwReference(start[i], j, h, u)
			for _, c := range []struct {
				what            string
				got, want, tolA float64
			}{{"param", gotP[j], p, eP}, {"exp_avg", gotM[j], m, eM}, {"exp_avg_sq", gotV[j], v, eV}} {
				if !(math.Abs(c.got-c.want) <= c.tolA) {
					t.Fatalf("entry %d (step %d, lr %g) %s[%d] = %.17g, float64 reference %.17g (bound %.3g)",
						i, start[i].step, start[i].lr, c.what, j, c.got, c.want, c.tolA)
				}
			}
		}
	}
}

// The native step matches AdamW's formula in float64 within the rounding bound of
// each dtype, for lists mixing sizes (one crossing several chunks of 16384),
// steps, learning rates (0 included) and weight decay 0 and > 0; the CPU op and
// the host emulation of the CUDA kernel both.
func TestAdamWMatchesFloat64Reference(t *testing.T) {
	lockThread(t)
	sizes := []int{1, 7, 300, 2*16384 + 5, 64, 1000}
	for _, dtype := range []gotch.DType{gotch.Float, gotch.Double} {
		for _, wd := range []float64{0, 0.1} {
			for _, emulate := range []bool{false, true} {
				name := fmt.Sprintf("%v/wd=%g/emulatedCUDA=%v", dtype, wd, emulate)
				t.Run(name, func(t *testing.T) {
					rng := rand.New(rand.NewPCG(7, uint64(len(name))))
					h := AdamWHyper{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd}
					list, start := adamwTensors(t, randomAdamWCases(rng, sizes), dtype)
					if err := adamw(list, h, emulate); err != nil {
						t.Fatal(err)
					}
					checkAdamW(t, list, start, h, dtype)
				})
			}
		}
	}
}

// β1 = 0.6 puts 1 − β1 = 0.4 in lerp's first branch and β2 = 0.3 puts 1 − β2 =
// 0.7 in its second; β1 = 0 gives bc1 = 1 from the first step.
func TestAdamWLerpBranchesAndZeroBeta(t *testing.T) {
	lockThread(t)
	for _, h := range []AdamWHyper{{Beta1: 0.6, Beta2: 0.3, Eps: 1e-6, WeightDecay: 0.5}, {Beta1: 0, Beta2: 0.5, Eps: 1e-3}} {
		for _, dtype := range []gotch.DType{gotch.Float, gotch.Double} {
			t.Run(fmt.Sprintf("%+v/%v", h, dtype), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(3, 9))
				list, start := adamwTensors(t, randomAdamWCases(rng, []int{5, 40, 3, 17}), dtype)
				if err := AdamW(list, h); err != nil {
					t.Fatal(err)
				}
				checkAdamW(t, list, start, h, dtype)
			})
		}
	}
}

// An empty list is a no-op.
func TestAdamWEmptyList(t *testing.T) {
	if err := AdamW(nil, AdamWHyper{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}); err != nil {
		t.Fatal(err)
	}
}

// The host emulation of the CUDA kernel (its blocks' chunks walked by 256 lanes)
// and the CPU op give the same list the same step: within the float64 bound's
// 1e-12 relative in float64, within twice the rounding bound in float32 (the
// device may contract into FMA where the CPU rounds twice).
func TestEmulatedCUDAAdamWMatchesCPU(t *testing.T) {
	lockThread(t)
	h := AdamWHyper{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.02}
	for _, dtype := range []gotch.DType{gotch.Float, gotch.Double} {
		t.Run(dtype.String(), func(t *testing.T) {
			cases := randomAdamWCases(rand.New(rand.NewPCG(5, 5)), []int{16384, 16385, 3, 255, 257, 40000})
			cpu, start := adamwTensors(t, cases, dtype)
			emu, _ := adamwTensors(t, cases, dtype)
			if err := adamw(cpu, h, false); err != nil {
				t.Fatal(err)
			}
			if err := adamw(emu, h, true); err != nil {
				t.Fatal(err)
			}
			for i := range cpu {
				a, b := values(cpu[i].Param), values(emu[i].Param)
				for j := range a {
					tol := 1e-12 * (1 + math.Abs(a[j]))
					if dtype == gotch.Float {
						_, _, _, eP, _, _ := adamwReference(start[i], j, h, unitRoundoff(dtype))
						tol = 2 * eP
					}
					if !(math.Abs(a[j]-b[j]) <= tol) {
						t.Fatalf("entry %d param[%d]: CPU %.17g, emulated CUDA %.17g", i, j, a[j], b[j])
					}
				}
			}
		})
	}
}

// A step moves the version counters as an in-place op would: a parameter saved
// for backward and then stepped makes that backward fail instead of using the
// stepped values silently.
func TestAdamWBumpsVersion(t *testing.T) {
	lockThread(t)
	e := adamwEntry(t, []int64{3}, gotch.Float)
	e.Param = newTensor(t, []float64{1, 2, 3}, []int64{3}, gotch.Float, true)
	y := e.Param.MustMul(e.Param, false).MustSum(gotch.Float, true) // saves p for backward
	defer y.MustDrop()
	if err := AdamW([]AdamWEntry{e}, AdamWHyper{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}); err != nil {
		t.Fatal(err)
	}
	if err := y.Backward(); err == nil || !strings.Contains(err.Error(), "inplace") {
		t.Errorf("backward through a stepped parameter: %v, want the in-place modification error", err)
	}
}
