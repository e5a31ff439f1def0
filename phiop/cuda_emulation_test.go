package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"
	"math"
	"testing"

	"github.com/sugarme/gotch"
)

// A transcription of cuda/phi_kernel.cu into Go, statement for statement, with
// CUDA's math functions replaced by correctly rounded ones (sincospif/sincospi
// by an exact reduction t = n + r and float64 sin/cos of πr; expf by exp). It
// runs the kernels' edge handling and summation structure on the CPU, which
// has no GPU: the test below holds it to the same parity bounds as the real
// kernels. Keep it in step with phi_kernel.cu.

type emuFloat interface{ ~float32 | ~float64 }

// emuSinCosPi is sin(πt) and cos(πt) with the argument reduced exactly.
func emuSinCosPi[T emuFloat](t T) (s, c T) {
	n := math.RoundToEven(float64(t))
	r := float64(t) - n // exact for either precision
	sign := 1.0
	if math.Mod(n, 2) != 0 {
		sign = -1
	}
	return T(sign * math.Sin(math.Pi*r)), T(sign * math.Cos(math.Pi*r))
}

var emuTaylorD = [...]float64{-3.2898681336964528, 3.246969701133414, -1.144510944732505,
	0.20918278254123832, -0.023460810354558225, 0.001781145516372851,
	-9.7662231263189277e-05, 4.0499478466192413e-06, -1.3148481279991983e-07,
	3.4330769499642842e-09, -7.3658937770969394e-11}

func emuTaylor[T emuFloat](z T) T {
	d := T(emuTaylorD[len(emuTaylorD)-1])
	for i := len(emuTaylorD) - 2; i >= 0; i-- {
		d = d*z + T(emuTaylorD[i])
	}
	return d
}

func emuSinc32(t float32) (f, fp float32) {
	const pi = float32(math.Pi)
	at := float32(math.Abs(float64(t)))
	a := at
	if at > 0x1p22 {
		a = 0x1p22
	}
	s, c := emuSinCosPi(a)
	var fa float32
	if a < 0.5 {
		f = 1
		if a != 0 {
			f = s / (pi * a)
		}
		fa = a * emuTaylor(a*a)
	} else {
		f = s / (pi * a)
		fa = (c - f) / a
	}
	if t < 0 {
		return f, -fa
	}
	return f, fa
}

func emuSinc64(t float64) (f, fp float64) {
	if math.IsInf(t, 0) {
		return 0, 0
	}
	s, c := emuSinCosPi(t)
	if math.Abs(t) < 0.5 {
		f = 1
		if t != 0 {
			f = s / (math.Pi * t)
		}
		return f, t * emuTaylor(t*t)
	}
	inv := 1 / (math.Pi * t)
	f = s * inv
	return f, (c - f) * math.Pi * inv
}

func emuEval[T emuFloat](basis adapter.Basis, t T) (f, fp T) {
	switch basis {
	case adapter.Sinc:
		if v, ok := any(t).(float32); ok {
			f32, fp32 := emuSinc32(v)
			return T(f32), T(fp32)
		}
		f64, fp64 := emuSinc64(float64(t))
		return T(f64), T(fp64)
	case adapter.Gaussian:
		f = T(math.Exp(float64(-t * t)))
		return f, -2 * t * f
	default:
		a := T(math.Abs(float64(t)))
		w := T(0)
		if a < 2 {
			w = 2 - a
		}
		var d T
		if a >= 1 {
			f, d = w*w*w/6, -0.5*w*w
		} else {
			f, d = T(2.0/3.0)-a*a*(1-0.5*a), a*(1.5*a-2)
		}
		if t < 0 {
			return f, -d
		}
		return f, d
	}
}

// emuKernels is forward_kernel, backward_kernel and reduce_kernel plus the
// shim's double-precision constants and ∂β, for one case and its variant flags:
// φ(0) from the forward kernel on a one-element zero, the residual's x and 1, and
// Σ G summed per thread in T, per block in double, with the φ(0) terms applied in
// the reduce kernel at t⁰ = −s·g in double.
func emuKernels[T emuFloat](c parityCase) result {
	K, n := len(c.p.a), len(c.mv)
	a, s, g, as := make([]T, K), make([]T, K), make([]T, K), make([]T, K)
	ad, beta := make([]float64, K), make([]float64, K)
	for k := range K {
		ad[k], beta[k] = float64(T(c.p.a[k])), float64(T(c.p.beta[k]))
		sd := softplus(beta[k]) * c.p.scale
		a[k], s[k], g[k], as[k] = T(ad[k]), T(sd), T(c.p.g[k]), T(ad[k]*sd)
	}
	x, G := make([]T, n), make([]T, n)
	for i := range n {
		x[i], G[i] = T(c.mv[i]), T(c.wv[i])
	}
	r := result{y: make([]float64, n), dm: make([]float64, n), da: make([]float64, K), dbeta: make([]float64, K)}
	plain := func(xi T) T {
		var acc T
		for k := range K {
			f, _ := emuEval(c.basis, s[k]*(xi-g[k]))
			acc += a[k] * f
		}
		return acc
	}
	var off T // forward_kernel's *offset: φ(0) from a launch on a one-element zero
	if c.v.Centred() {
		off = plain(0)
	}
	for i := range n {
		if c.v.Residual {
			r.y[i] = float64((plain(x[i]) - off) + x[i])
		} else {
			r.y[i] = float64(plain(x[i]) - off)
		}
	}
	d0 := T(0) // backward_kernel's dr[j] start: the residual's identity
	if c.v.Residual {
		d0 = 1
	}
	var sumG float64 // Σ G: per thread in T, then double
	// Backward: thread j of a block owns elements base+j, base+j+256, ... (8 of
	// them); its float sums go to double in the block's tree (the order of the
	// double additions does not matter at these bounds).
	const threads, per = 256, 8
	su := make([]float64, K)
	for base := 0; base < n; base += threads * per {
		for j := range threads {
			dr := make([]T, per)
			var sg T
			for e := range per {
				dr[e] = d0
				if i := base + j + e*threads; i < n {
					sg += G[i]
				}
			}
			sumG += float64(sg)
			for k := range K {
				var sa, sb T
				for e := range per {
					i := base + j + e*threads
					if i >= n {
						continue // padding: x = 0, G = 0 contributes nothing
					}
					u := x[i] - g[k]
					f, fp := emuEval(c.basis, s[k]*u)
					dr[e] += as[k] * fp
					sa += G[i] * f
					sb += G[i] * u * fp
				}
				r.da[k] += float64(sa)
				su[k] += float64(sb)
			}
			for e := range per {
				if i := base + j + e*threads; i < n {
					r.dm[i] = float64(G[i] * dr[e])
				}
			}
		}
	}
	for k := range K {
		if c.v.Centred() { // reduce_kernel's φ(0) terms
			gd := float64(g[k])
			f0, fp0 := emuEval(c.basis, -(softplus(beta[k])*c.p.scale)*gd)
			r.da[k] -= f0 * sumG
			su[k] += gd * fp0 * sumG
		}
		r.da[k] = float64(T(r.da[k]))
		r.dbeta[k] = float64(T(ad[k] * c.p.scale * su[k] * paritySigmoid(beta[k])))
	}
	return r
}

// The CUDA kernels' arithmetic, emulated on the CPU, matches the CPU op within
// the parity bounds, NaN and ±Inf included: the edge handling written for the
// GPU is right, and the bounds admit a correct implementation whose sin, cos
// and exp differ from the CPU's.
func TestEmulatedCUDAKernelsMatchCPU(t *testing.T) {
	lockThread(t)
	for _, c := range parityCases() {
		if len(c.p.a) > 100 {
			continue // the large-K case differs on the GPU only in where K-vectors are read from
		}
		for _, dtype := range []gotch.DType{gotch.Float, gotch.Double} {
			t.Run(fmt.Sprintf("%s/%v", c.name, dtype), func(t *testing.T) {
				want := evaluateOn(t, gotch.CPU, c, dtype)
				var got result
				if dtype == gotch.Float {
					got = emuKernels[float32](c)
				} else {
					got = emuKernels[float64](c)
				}
				compareParity(t, got, want, tolerances(c.p, c.mv, c.wv, c.v, dtype, want))
			})
		}
	}
}
