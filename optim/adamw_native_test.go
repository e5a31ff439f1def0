package optim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/phiop"
)

// roundingBound32 bounds how far a float32 AdamW step of one element may lie from
// the step in exact arithmetic (u = 2⁻²⁴, first order in u, each rounded operation
// or coefficient adding u times the magnitude it rounds; the derivation is
// phiop/adamw_test.go's adamwReference):
//
//	E_m ≤ u(|m′| + 4(|g| + |m|))      lerp: a subtraction, a rounded weight, a product, a sum
//	E_v ≤ u(|v′| + 5(g² + v))         one more for g²
//	E_s ≤ min(E_v/(2√v′), √E_v) + u√v′
//	δD  ≤ (E_s + u·ε√bc2)/(√v′ + ε√bc2) + 3u   for D = (√v′ + ε√bc2)/(lr/bc1·√bc2)
//	E_p ≤ 2u|p| + u|p′| + E_m/D + |m′/D|(δD + u)
//
// doubled for second-order terms and FMA contraction. Two float32
// implementations of the step (the native op and the libtorch ops) then differ by
// at most twice this bound.
func roundingBound32(p, g, m, v float64, step int64, lr float64, c AdamWConfig) float64 {
	const u = 0x1p-24
	t := float64(step)
	bc1, bc2 := 1-math.Pow(c.Beta1, t), 1-math.Pow(c.Beta2, t)
	m1 := c.Beta1*m + (1-c.Beta1)*g
	v1 := c.Beta2*v + (1-c.Beta2)*g*g
	p1 := p * (1 - lr*c.WeightDecay)
	eM := u * (math.Abs(m1) + 4*(math.Abs(g)+math.Abs(m)))
	eV := u * (math.Abs(v1) + 5*(g*g+v))
	var eU float64
	if lr != 0 {
		sq, epsTerm := math.Sqrt(v1), c.Eps*math.Sqrt(bc2)
		d := (sq + epsTerm) / (lr / bc1 * math.Sqrt(bc2))
		p1 -= m1 / d
		eS := math.Sqrt(eV) + u*sq
		if sq > 0 {
			eS = math.Min(eV/(2*sq), math.Sqrt(eV)) + u*sq
		}
		deltaD := (eS+u*epsTerm)/(sq+epsTerm) + 3*u
		eU = eM/d + math.Abs(m1/d)*(deltaD+u)
	}
	return 2 * (2*u*math.Abs(p) + u*math.Abs(p1) + eU)
}

// twin is a parameter list built twice from the same values: one for the native
// optimizer, one for the libtorch-op path.
type twin struct {
	names  []string
	native []*ts.Tensor
	ops    []*ts.Tensor
}

func newTwin(t *testing.T, rng *rand.Rand, shapes [][]int64, dtype gotch.DType) twin {
	t.Helper()
	var tw twin
	for i, shape := range shapes {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		vals := make([]float64, n)
		for j := range vals {
			vals[j] = rng.NormFloat64()
		}
		a, b := leaf(t, vals, shape, dtype, true), leaf(t, vals, shape, dtype, true)
		t.Cleanup(func() { a.MustDrop(); b.MustDrop() })
		tw.names = append(tw.names, fmt.Sprintf("p%d", i))
		tw.native, tw.ops = append(tw.native, a), append(tw.ops, b)
	}
	return tw
}

func (tw twin) named(ps []*ts.Tensor) []ts.NamedTensor {
	out := make([]ts.NamedTensor, len(ps))
	for i, p := range ps {
		out[i] = ts.NamedTensor{Name: tw.names[i], Tensor: p}
	}
	return out
}

// The native step equals the libtorch-op path it replaces: several tensors of
// different sizes (one over a 16384-element chunk), per-parameter learning-rate
// scales (0 included: the moments move, p does not), a parameter whose state is
// created one step late and one that never gets a gradient, with weight decay 0
// and > 0. Before each step the op path is reset to the native one's parameters
// and state, so each comparison covers one step's rounding: float64 within 1e-12
// relative, float32 within twice roundingBound32.
func TestAdamWNativeMatchesOps(t *testing.T) {
	lockThread(t)
	shapes := [][]int64{{3}, {5, 4}, {17000}, {64, 8}, {1}, {2, 2}}
	scales := []float64{1, 0.5, 2, 0, 1, 3}
	for _, dtype := range []gotch.DType{gotch.Double, gotch.Float} {
		for _, wd := range []float64{0, 0.05} {
			t.Run(fmt.Sprintf("%v/wd=%g", dtype, wd), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(11, uint64(dtype.String()[0])))
				tw := newTwin(t, rng, shapes, dtype)
				cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd}
				on, err := NewAdamW(tw.named(tw.native), cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer on.Close()
				off, err := NewAdamW(tw.named(tw.ops), cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer off.Close()
				off.opsOnly = true
				for i, s := range scales {
					if err := on.SetLRScale(tw.names[i], s); err != nil {
						t.Fatal(err)
					}
					if err := off.SetLRScale(tw.names[i], s); err != nil {
						t.Fatal(err)
					}
				}
				for step := 1; step <= 4; step++ {
					grads := make([][]float64, len(shapes))
					for i, p := range tw.native {
						if i == 5 || (i == 2 && step == 1) {
							continue // p5 never has a gradient; p2's state starts at step 2
						}
						grads[i] = make([]float64, p.Numel())
						for j := range grads[i] {
							grads[i][j] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(8)-6))
						}
					}
					syncOps(t, on, off, tw)
					before := stateValues(t, on, tw)
					setGrads(t, on, tw.native, grads)
					setGrads(t, off, tw.ops, grads)
					if err := on.Step(0.01); err != nil {
						t.Fatal(err)
					}
					if err := off.Step(0.01); err != nil {
						t.Fatal(err)
					}
					if on.last.nativeCalls != 1 || on.last.fallbackParams != 0 || off.last.nativeCalls != 0 {
						t.Fatalf("step %d: native %+v, ops-only %+v", step, on.last, off.last)
					}
					compareTwin(t, on, off, tw, before, grads, step, 0.01, scales, dtype)
				}
				if _, ok, _ := on.State("p5"); ok || on.Steps()["p2"] != 3 || on.Steps()["p0"] != 4 {
					t.Errorf("steps %v: want p0 at 4, p2 at 3 (lazy state), p5 without state", on.Steps())
				}
			})
		}
	}
}

// syncOps copies the native optimizer's parameters and state into the ops one.
func syncOps(t *testing.T, on, off *AdamW, tw twin) {
	t.Helper()
	for i, name := range tw.names {
		tensortest.Set(t, tw.ops[i], tensortest.Values(t, tw.native[i]))
		if st, ok, err := on.State(name); err != nil {
			t.Fatal(err)
		} else if ok {
			if err := off.SetState(name, st); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// elemState is one parameter's values before a step (moments nil without state).
type elemState struct{ p, m, v []float64 }

func stateValues(t *testing.T, o *AdamW, tw twin) []elemState {
	t.Helper()
	out := make([]elemState, len(tw.names))
	for i, name := range tw.names {
		out[i].p = tensortest.Values(t, tw.native[i])
		if st, ok, _ := o.State(name); ok {
			out[i].m, out[i].v = tensortest.Values(t, st.ExpAvg), tensortest.Values(t, st.ExpAvgSq)
		}
	}
	return out
}

func compareTwin(t *testing.T, on, off *AdamW, tw twin, before []elemState, grads [][]float64,
	step int, lr float64, scales []float64, dtype gotch.DType) {
	t.Helper()
	for i, name := range tw.names {
		a, b := tensortest.Values(t, tw.native[i]), tensortest.Values(t, tw.ops[i])
		if on.Steps()[name] != off.Steps()[name] {
			t.Fatalf("step %d: %s step count %d native, %d ops", step, name, on.Steps()[name], off.Steps()[name])
		}
		for j := range a {
			tol := 1e-12 * (1 + math.Abs(b[j]))
			if dtype == gotch.Float && grads[i] != nil {
				var m, v float64
				if before[i].m != nil {
					m, v = before[i].m[j], before[i].v[j]
				}
				tol = 2 * roundingBound32(before[i].p[j], float64(float32(grads[i][j])), m, v,
					on.Steps()[name], lr*scales[i], on.Config())
			}
			if !(math.Abs(a[j]-b[j]) <= tol) {
				t.Fatalf("step %d: %s[%d] native %.17g, ops %.17g (tolerance %.3g)", step, name, j, a[j], b[j], tol)
			}
		}
	}
}

// Parameters of two dtypes take one native call each; a non-contiguous parameter
// (a transposed leaf: its gradient and moments share its strides) falls back to
// the libtorch ops and ends bit-identical to the ops-only optimizer.
func TestAdamWGroupsAndFallback(t *testing.T) {
	lockThread(t)
	vals := []float64{0.5, -1, 2, 0.25, -0.75, 1.5}
	transposed := func() *ts.Tensor {
		x := ts.MustOfSlice(vals).MustReshape([]int64{2, 3}, true).MustTotype(gotch.Float, true)
		y := x.MustTranspose(0, 1, true).MustSetRequiresGrad(true, true)
		t.Cleanup(func() { y.MustDrop() })
		return y
	}
	mk := func(dtype gotch.DType) *ts.Tensor {
		p := leaf(t, vals, []int64{6}, dtype, true)
		t.Cleanup(func() { p.MustDrop() })
		return p
	}
	run := func(opsOnly bool) (*AdamW, []*ts.Tensor) {
		ps := []*ts.Tensor{mk(gotch.Float), mk(gotch.Double), transposed(), mk(gotch.Float)}
		named := []ts.NamedTensor{{Name: "f", Tensor: ps[0]}, {Name: "d", Tensor: ps[1]}, {Name: "t", Tensor: ps[2]}, {Name: "g", Tensor: ps[3]}}
		o, err := NewAdamW(named, DefaultAdamWConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(o.Close)
		o.opsOnly = opsOnly
		g := []float64{0.1, -0.2, 0.3, -0.4, 0.5, -0.6}
		setGrads(t, o, ps, [][]float64{g, g, g, g})
		if err := o.Step(0.1); err != nil {
			t.Fatal(err)
		}
		return o, ps
	}
	o, ps := run(false)
	if want := (stepStats{nativeCalls: 2, nativeParams: 3, fallbackParams: 1}); o.last != want {
		t.Errorf("step did %+v, want %+v", o.last, want)
	}
	_, ref := run(true)
	if a, b := tensortest.Values(t, ps[2]), tensortest.Values(t, ref[2]); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("fallback parameter %v, ops-only %v", a, b)
	}
}

// State that does not fit its parameter (here planted directly) is an error that
// names the parameter, and the refused step changes no parameter.
func TestAdamWNativeMismatchNamesParameter(t *testing.T) {
	lockThread(t)
	for _, c := range []struct {
		name  string
		plant func() *ts.Tensor
		want  error
	}{
		{"shape", func() *ts.Tensor { return ts.MustZeros([]int64{3}, gotch.Float, gotch.CPU) }, phiop.ErrShape},
		{"dtype", func() *ts.Tensor { return ts.MustZeros([]int64{2}, gotch.Double, gotch.CPU) }, phiop.ErrDType},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := leaf(t, []float64{1, 2}, []int64{2}, gotch.Float, true)
			b := leaf(t, []float64{3, 4}, []int64{2}, gotch.Float, true)
			defer a.MustDrop()
			defer b.MustDrop()
			o, err := NewAdamW([]ts.NamedTensor{{Name: "alpha", Tensor: a}, {Name: "beta", Tensor: b}}, DefaultAdamWConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			setGrads(t, o, []*ts.Tensor{a, b}, [][]float64{{1, 1}, {1, 1}})
			if err := o.Step(0.1); err != nil {
				t.Fatal(err)
			}
			o.state["beta"].ExpAvg.MustDrop()
			o.state["beta"].ExpAvg = c.plant()
			before := tensortest.Values(t, a)
			err = o.Step(0.1)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), `"beta"`) {
				t.Fatalf("step with a bad %s: %v, want %v naming \"beta\"", c.name, err, c.want)
			}
			if after := tensortest.Values(t, a); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("refused step moved alpha: %v -> %v", before, after)
			}
		})
	}
}
