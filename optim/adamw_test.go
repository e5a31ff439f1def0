package optim

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"testing"

	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// golden is testdata/adamw_golden.json, written by testdata/gen_adamw.py from
// torch.optim.AdamW (python3-torch 1.13.1).
type golden struct {
	Version int `json:"version"`
	Config  struct {
		Beta1, Beta2, Eps float64
		WeightDecay       float64 `json:"weight_decay"`
	} `json:"config"`
	Params map[string]struct {
		Shape []int64   `json:"shape"`
		Init  []float64 `json:"init"`
	} `json:"params"`
	Order []string `json:"order"`
	Steps []struct {
		LR    float64              `json:"lr"`
		Grads map[string][]float64 `json:"grads"`
		After map[string]struct {
			Step     int64     `json:"step"`
			Param    []float64 `json:"param"`
			ExpAvg   []float64 `json:"exp_avg"`
			ExpAvgSq []float64 `json:"exp_avg_sq"`
		} `json:"after"`
	} `json:"steps"`
}

const regenerate = "regenerate with: cd optim/testdata && /usr/bin/python3 gen_adamw.py > adamw_golden.json"

func loadGolden(t *testing.T) golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/adamw_golden.json")
	if err != nil {
		t.Fatalf("%v (%s)", err, regenerate)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil || g.Version != 1 {
		t.Fatalf("bad golden file (version %d, err %v); %s", g.Version, err, regenerate)
	}
	return g
}

// TestAdamWMatchesTorch replays torch.optim.AdamW's trajectory: six steps with
// changing learning rates, weight decay 0.1, and a parameter whose state starts
// one step late. In float64 the only differences are rounding-order ones (the
// moments move by lerp where torch 1.13 multiplies and adds, and the bias
// corrections are folded into one divisor), a few ulps, hence 1e-12. In
// float32 the gradients and moments are rounded to 24 bits, hence 1e-5.
func TestAdamWMatchesTorch(t *testing.T) {
	lockThread(t)
	g := loadGolden(t)
	for _, tc := range []struct {
		dtype gotch.DType
		tol   float64
	}{{gotch.Double, 1e-12}, {gotch.Float, 1e-5}} {
		t.Run(tc.dtype.String(), func(t *testing.T) {
			var named []ts.NamedTensor
			var params []*ts.Tensor
			for _, n := range g.Order {
				p := leaf(t, g.Params[n].Init, g.Params[n].Shape, tc.dtype, true)
				defer p.MustDrop()
				params = append(params, p)
				named = append(named, ts.NamedTensor{Name: n, Tensor: p})
			}
			o, err := NewAdamW(named, AdamWConfig{g.Config.Beta1, g.Config.Beta2, g.Config.Eps, g.Config.WeightDecay})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			for k, step := range g.Steps {
				grads := make([][]float64, len(g.Order))
				for i, n := range g.Order {
					grads[i] = step.Grads[n] // nil when torch had no gradient
				}
				setGrads(t, o, params, grads)
				if err := o.Step(step.LR); err != nil {
					t.Fatal(err)
				}
				for i, n := range g.Order {
					want, has := step.After[n]
					st, ok, err := o.State(n)
					if err != nil {
						t.Fatal(err)
					}
					if ok != has {
						t.Fatalf("step %d: %s has state %v, torch %v", k+1, n, ok, has)
					}
					if !has {
						continue
					}
					if st.Step != want.Step {
						t.Errorf("step %d: %s step count %d, torch %d", k+1, n, st.Step, want.Step)
					}
					for _, c := range []struct {
						what string
						have *ts.Tensor
						want []float64
					}{{"param", params[i], want.Param}, {"exp_avg", st.ExpAvg, want.ExpAvg}, {"exp_avg_sq", st.ExpAvgSq, want.ExpAvgSq}} {
						for j, v := range tensortest.Values(t, c.have) {
							if !closeTo(v, c.want[j], tc.tol) {
								t.Fatalf("step %d: %s.%s[%d] = %.17g, torch %.17g (%s)", k+1, n, c.what, j, v, c.want[j], regenerate)
							}
						}
					}
				}
			}
		})
	}
}

// TestAdamWHandReference checks two steps against AdamW written out in float64 Go
// loops, without weight decay and with a gradient small enough for ε to matter.
func TestAdamWHandReference(t *testing.T) {
	lockThread(t)
	p0 := []float64{0.5, -1.5, 2.0, 1e-3}
	gs := [][]float64{{0.1, -0.2, 3.0, 1e-9}, {-0.4, 0.0, 1.0, -2e-9}}
	const b1, b2, eps, lr = 0.8, 0.99, 1e-8, 0.05

	ref := append([]float64(nil), p0...)
	m, v := make([]float64, 4), make([]float64, 4)
	for s, g := range gs {
		step := float64(s + 1)
		for i := range ref {
			m[i] = b1*m[i] + (1-b1)*g[i]
			v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
			mhat := m[i] / (1 - math.Pow(b1, step))
			den := math.Sqrt(v[i])/math.Sqrt(1-math.Pow(b2, step)) + eps
			ref[i] -= lr * mhat / den // = (lr/bc1)·m/den
		}
	}

	p := leaf(t, p0, []int64{4}, gotch.Double, true)
	defer p.MustDrop()
	o, err := NewAdamW([]ts.NamedTensor{{Name: "p", Tensor: p}}, AdamWConfig{Beta1: b1, Beta2: b2, Eps: eps})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for _, g := range gs {
		setGrads(t, o, []*ts.Tensor{p}, [][]float64{g})
		if err := o.Step(lr); err != nil {
			t.Fatal(err)
		}
	}
	for i, got := range tensortest.Values(t, p) {
		if !closeTo(got, ref[i], 1e-14) {
			t.Errorf("p[%d] = %.17g, hand-written AdamW %.17g", i, got, ref[i])
		}
	}
}

// TestAdamWStateRestoresExactly saves the state after three steps, loads it into a
// fresh optimizer over a copy of the parameters, and requires both runs to stay
// bit-identical for three more steps.
func TestAdamWStateRestoresExactly(t *testing.T) {
	lockThread(t)
	init := []float64{0.3, -0.7, 1.1, 0.05, -2.0, 0.9}
	grad := func(s int) []float64 {
		g := make([]float64, len(init))
		for i := range g {
			g[i] = math.Sin(float64(7*s+i)) * float64(s+1)
		}
		return g
	}
	cfg := DefaultAdamWConfig()
	p := leaf(t, init, []int64{2, 3}, gotch.Float, true)
	defer p.MustDrop()
	o, err := NewAdamW([]ts.NamedTensor{{Name: "w", Tensor: p}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for s := 0; s < 3; s++ {
		setGrads(t, o, []*ts.Tensor{p}, [][]float64{grad(s)})
		if err := o.Step(1e-2); err != nil {
			t.Fatal(err)
		}
	}
	st, ok, err := o.State("w")
	if err != nil || !ok {
		t.Fatalf("state: %v %v", ok, err)
	}
	names := o.StateTensors()
	if len(names) != 2 || names[0].Name != "w.exp_avg" || names[1].Name != "w.exp_avg_sq" || o.Steps()["w"] != 3 {
		t.Fatalf("state listing: %v, steps %v", names, o.Steps())
	}

	q := leaf(t, tensortest.Values(t, p), []int64{2, 3}, gotch.Float, true)
	defer q.MustDrop()
	o2, err := NewAdamW([]ts.NamedTensor{{Name: "w", Tensor: q}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer o2.Close()
	if err := o2.SetState("w", st); err != nil {
		t.Fatal(err)
	}
	for s := 3; s < 6; s++ {
		setGrads(t, o, []*ts.Tensor{p}, [][]float64{grad(s)})
		setGrads(t, o2, []*ts.Tensor{q}, [][]float64{grad(s)})
		if err := o.Step(1e-2); err != nil {
			t.Fatal(err)
		}
		if err := o2.Step(1e-2); err != nil {
			t.Fatal(err)
		}
	}
	a, b := tensortest.Values(t, p), tensortest.Values(t, q)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("resumed run differs at %d: %.9g vs %.9g", i, a[i], b[i])
		}
	}
	if err := o2.SetState("nope", st); !errors.Is(err, ErrUnknownParam) {
		t.Errorf("SetState of an unknown name: %v", err)
	}
}

// TestAdamWStepFreesTemporaries counts gotch's live tensor handles around Step and
// ZeroGrad (with the GC off, so finalizers cannot hide a leak).
func TestAdamWStepFreesTemporaries(t *testing.T) {
	lockThread(t)
	p := leaf(t, []float64{1, 2, 3, 4}, []int64{2, 2}, gotch.Float, true)
	defer p.MustDrop()
	o, err := NewAdamW([]ts.NamedTensor{{Name: "p", Tensor: p}}, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	setGrads(t, o, []*ts.Tensor{p}, [][]float64{{1, -1, 2, -2}})
	if err := o.Step(0.1); err != nil { // creates the two moment tensors
		t.Fatal(err)
	}
	withoutGC(t)
	before := liveTensors()
	for i := 0; i < 3; i++ {
		if err := o.Step(0.1); err != nil {
			t.Fatal(err)
		}
		if _, err := ClipGradNorm(o.Params(), 0.5); err != nil {
			t.Fatal(err)
		}
		if err := o.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
	}
	if after := liveTensors(); after != before {
		t.Errorf("live tensor handles %d before, %d after three steps", before, after)
	}
}

func TestNewAdamWRejectsDuplicatesAndBadConfig(t *testing.T) {
	p := leaf(t, []float64{1}, []int64{1}, gotch.Float, true)
	defer p.MustDrop()
	if _, err := NewAdamW([]ts.NamedTensor{{Name: "x", Tensor: p}, {Name: "x", Tensor: p}}, DefaultAdamWConfig()); !errors.Is(err, ErrConfig) {
		t.Errorf("duplicate name: %v", err)
	}
	if _, err := NewAdamW([]ts.NamedTensor{{Name: "x", Tensor: p}, {Name: "y", Tensor: p}}, DefaultAdamWConfig()); !errors.Is(err, ErrConfig) {
		t.Errorf("same tensor twice: %v", err)
	}
	bad := DefaultAdamWConfig()
	bad.Beta2 = 1
	if _, err := NewAdamW(nil, bad); !errors.Is(err, ErrConfig) {
		t.Errorf("beta2 = 1: %v", err)
	}
}
