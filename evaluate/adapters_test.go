package evaluate_test

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/evaluate"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
)

// inject puts adapters of method on targets and draws every trainable tensor afresh
// (B ≠ 0, a ≠ 0).
func inject(t *testing.T, m *model.Model, targets string, method adapter.Method) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	spec := adapter.Default()
	spec.Method, spec.R, spec.K, spec.L = method, 3, 10, 2
	spec.TargetModules, _ = adapter.ParseTargets(targets)
	if _, err := m.Inject(spec, rand.New(rand.NewPCG(3, 4))); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for _, nt := range m.TrainableTensors() {
		if !nt.Trainable {
			continue
		}
		vals := make([]float64, nt.Tensor.Numel())
		for i := range vals {
			vals[i] = 0.3 * rng.NormFloat64()
			if strings.HasSuffix(nt.Name, "bandwidth_raw") {
				vals[i] += 0.5
			}
		}
		src := ts.MustOfSlice(vals).MustReshape(nt.Tensor.MustSize(), true).MustTotype(nt.Tensor.DType(), true)
		ts.NoGrad(func() { nt.Tensor.Copy_(src) })
		src.MustDrop()
	}
}

// Singular values are checked against the eigenvalues of XᵀX from a float64 Jacobi
// iteration written here, stable ranks against ‖X‖²_F/σ²_max, and φ's samples against
// Σ a_k sinc(b_k (x − g_k)) evaluated on the host. For LoRA, ΔW = s·B·A exactly.
func TestAnalyzeAdapters(t *testing.T) {
	m, _ := tiny(t, "llama", 0)
	inject(t, m, "q_proj,down_proj", adapter.LRLoRA)
	stats, err := evaluate.AnalyzeAdapters(m, evaluate.AnalyzeOptions{PhiPoints: 9})
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 4 {
		t.Fatalf("%d stats, want 4", len(stats))
	}
	for i, ad := range m.Adapters() {
		st := stats[i]
		dw, err := ad.DeltaWeight()
		if err != nil {
			t.Fatal(err)
		}
		rows := matrix(t, dw)
		dw.MustDrop()
		want := singularValues(rows)
		if len(st.SigmaDelta) != len(want) {
			t.Fatalf("%s: %d singular values, want %d", st.Name, len(st.SigmaDelta), len(want))
		}
		for k := range want {
			if math.Abs(st.SigmaDelta[k]-want[k]) > 1e-5*(1+want[0]) {
				t.Errorf("%s: σ_%d = %.8f, Jacobi %.8f", st.Name, k, st.SigmaDelta[k], want[k])
			}
		}
		fro := 0.0
		for _, r := range rows {
			for _, v := range r {
				fro += v * v
			}
		}
		if sr := fro / (want[0] * want[0]); math.Abs(st.SRDelta-sr) > 1e-6*sr {
			t.Errorf("%s: sr(ΔW) %.8f, want %.8f", st.Name, st.SRDelta, sr)
		}
		if st.SRBA < 1 || st.SRBA > 3+1e-9 {
			t.Errorf("%s: sr(B·A) %v outside [1, r = 3]", st.Name, st.SRBA)
		}
		checkPhi(t, ad, st)
	}
}

func checkPhi(t *testing.T, ad *lrlora.Adapter, st evaluate.AdapterStats) {
	t.Helper()
	vals := map[string][]float64{}
	for _, nt := range ad.Tensors() {
		vals[nt.Name[strings.LastIndex(nt.Name, ".")+1:]] = nt.Tensor.MustTotype(nt.Tensor.DType(), false).Float64Values()
	}
	if len(st.PhiX) != 9 || st.PhiX[0] != -3 || st.PhiX[8] != 3 {
		t.Fatalf("%s: φ sampled at %v, want 9 points on [−3, 3]", st.Name, st.PhiX)
	}
	for i, x := range st.PhiX {
		want := 0.0
		for k, a := range vals["amplitude"] {
			b := math.Log1p(math.Exp(vals["bandwidth_raw"][k]))
			u := b * (x - vals["grid"][k])
			s := 1.0
			if u != 0 {
				s = math.Sin(math.Pi*u) / (math.Pi * u)
			}
			want += a * s
		}
		if math.Abs(st.PhiY[i]-want) > 1e-5 {
			t.Errorf("%s: φ(%g) = %.7f, want %.7f", st.Name, x, st.PhiY[i], want)
		}
	}
}

func TestAnalyzeLoRAIsScaledBA(t *testing.T) {
	m, _ := tiny(t, "llama", 0)
	inject(t, m, "v_proj", adapter.LoRA)
	stats, err := evaluate.AnalyzeAdapters(m, evaluate.AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stats {
		if math.Abs(st.SRDelta-st.SRBA) > 1e-6*st.SRBA || st.PhiX != nil {
			t.Errorf("%s: sr(ΔW) %v, sr(BA) %v, φ %v", st.Name, st.SRDelta, st.SRBA, st.PhiX)
		}
		for k := range st.SigmaBA {
			if math.Abs(st.SigmaDelta[k]-2*st.SigmaBA[k]) > 1e-5*(1+st.SigmaBA[0]) { // s = α/r = 2
				t.Errorf("%s: σ_%d(ΔW) = %v, 2·σ(BA) = %v", st.Name, k, st.SigmaDelta[k], 2*st.SigmaBA[k])
			}
			if k >= 3 && st.SigmaBA[k] > 1e-5*st.SigmaBA[0] {
				t.Errorf("%s: σ_%d(BA) = %v, rank exceeds r = 3", st.Name, k, st.SigmaBA[k])
			}
		}
	}
}

// matrix copies a 2-D tensor into rows of float64.
func matrix(t *testing.T, x *ts.Tensor) [][]float64 {
	t.Helper()
	shape := x.MustSize()
	d := x.MustDetach(false)
	defer d.MustDrop()
	flat := d.MustTotype(d.DType(), false)
	defer flat.MustDrop()
	vals := flat.Float64Values()
	rows := make([][]float64, shape[0])
	for i := range rows {
		rows[i] = vals[i*int(shape[1]) : (i+1)*int(shape[1])]
	}
	return rows
}

// singularValues returns the singular values of X (n×m), descending: square roots of the
// eigenvalues of XᵀX found by cyclic Jacobi rotations in float64.
func singularValues(x [][]float64) []float64 {
	n, m := len(x), len(x[0])
	a := make([][]float64, m)
	for i := range a {
		a[i] = make([]float64, m)
		for j := range a[i] {
			for k := 0; k < n; k++ {
				a[i][j] += x[k][i] * x[k][j]
			}
		}
	}
	for sweep := 0; sweep < 100; sweep++ {
		off := 0.0
		for p := 0; p < m; p++ {
			for q := p + 1; q < m; q++ {
				off += a[p][q] * a[p][q]
				if math.Abs(a[p][q]) < 1e-300 {
					continue
				}
				theta := (a[q][q] - a[p][p]) / (2 * a[p][q])
				tt := math.Copysign(1, theta) / (math.Abs(theta) + math.Sqrt(theta*theta+1))
				c := 1 / math.Sqrt(tt*tt+1)
				s := tt * c
				for k := 0; k < m; k++ {
					akp, akq := a[k][p], a[k][q]
					a[k][p], a[k][q] = c*akp-s*akq, s*akp+c*akq
				}
				for k := 0; k < m; k++ {
					apk, aqk := a[p][k], a[q][k]
					a[p][k], a[q][k] = c*apk-s*aqk, s*apk+c*aqk
				}
			}
		}
		if off < 1e-26 {
			break
		}
	}
	sv := make([]float64, m)
	for i := range sv {
		sv[i] = math.Sqrt(math.Max(a[i][i], 0))
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(sv)))
	return sv[:min(n, m)]
}
