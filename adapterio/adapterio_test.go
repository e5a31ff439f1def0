package adapterio_test

import (
	"encoding/json"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/adapterio"
	"github.com/lrtrain/lrtrain/export"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/param"
)

// An adapter-only export read back with Open and attached to a fresh copy of the base
// model gives the adapted model's tensors exactly and bit-identical logits (same
// float32 values, same kernels, same process): plain LoRA on Llama and Qwen2 (a regex
// target list), LR-LoRA with a classification head on RoBERTa, LR-LoRA with φ shared
// across layers.
func TestExportRoundTrip(t *testing.T) {
	cases := []struct {
		name, arch, targets string
		method              adapter.Method
		share               adapter.Sharing
		center, residual    bool
	}{
		{"llama-lora", "llama", strings.Join(adapter.LLMTargetModules, ","), adapter.LoRA, adapter.ShareNone, false, false},
		{"qwen2-lora-regex", "qwen2", `regex:.*\.(q_proj|v_proj)`, adapter.LoRA, adapter.ShareNone, false, false},
		{"roberta-lrlora-head-centred", "roberta", "query,value", adapter.LRLoRA, adapter.ShareNone, true, false},
		{"llama-lrlora-shared", "llama", "q_proj,v_proj", adapter.LRLoRA, adapter.ShareAll, false, false},
		{"qwen2-lrlora-residual", "qwen2", "o_proj", adapter.LRLoRA, adapter.ShareNone, false, true},
		{"llama-sinelora", "llama", "k_proj", adapter.SineLoRA, adapter.ShareNone, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := writeBase(t, c.arch)
			m := load(t, base)
			spec := adapter.Default()
			spec.Method, spec.R, spec.K, spec.Share = c.method, 4, 12, c.share
			spec.Center, spec.Residual, spec.SineOmega = c.center, c.residual, 150
			if c.center {
				spec.Init = adapter.InitSmall
			}
			var err error
			if spec.TargetModules, err = adapter.ParseTargets(c.targets); err != nil {
				t.Fatal(err)
			}
			var extra []param.Tensor
			if c.share != adapter.ShareNone {
				sh, err := lrlora.NewSharedPhi(spec.Phi, gotch.Float, gotch.CPU)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(sh.Close)
				if _, err := m.Inject(spec, rand.New(rand.NewPCG(1, 2)), lrlora.WithSharedPhi(sh)); err != nil {
					t.Fatal(err)
				}
				extra = sh.Tensors()
				for _, nt := range extra {
					if nt.Trainable {
						vals := tensortest.Values(t, nt.Tensor)
						for i := range vals {
							vals[i] += 0.05 * float64(i%5+1)
						}
						tensortest.Set(t, nt.Tensor, vals)
					}
				}
			}
			if c.share == adapter.ShareNone {
				inject(t, m, spec)
			} else {
				perturbOwn(t, m)
			}
			out := filepath.Join(t.TempDir(), "adapter")
			if _, err := export.AdapterOnly(m, out, export.Options{Extra: extra}); err != nil {
				t.Fatal(err)
			}

			d, err := adapterio.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if got := len(d.Modules); got != len(m.Adapters()) {
				t.Errorf("Open found %d adapted modules, the model has %d", got, len(m.Adapters()))
			}
			if got, want := shaping(t, d.Spec), shaping(t, m.Adapters()[0].Spec()); got != want {
				t.Errorf("read back the adapter's shaping settings\n%s\nwritten\n%s", got, want)
			}
			m2 := load(t, base)
			l, err := d.Attach(m2)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			want := append(m.TrainableTensors(), extra...)
			if len(l.Tensors) != len(want) {
				t.Fatalf("%d tensors loaded, the adapted model has %d", len(l.Tensors), len(want))
			}
			for i, nt := range want {
				if l.Tensors[i].Name != nt.Name {
					t.Fatalf("tensor %d is %s, want %s", i, l.Tensors[i].Name, nt.Name)
				}
				if d := tensortest.MaxAbsDiff(tensortest.Values(t, l.Tensors[i].Tensor), tensortest.Values(t, nt.Tensor)); d != 0 {
					t.Errorf("%s differs by %g", nt.Name, d)
				}
			}
			a, b := tensortest.Logits(t, m), tensortest.Logits(t, m2)
			if d := tensortest.MaxAbsDiff(a, b); d != 0 {
				t.Errorf("logits differ by %g", d)
			}
		})
	}
}

// shaping is the JSON of the settings that shape an adapter (adapter.ShapingKeys),
// target_modules left out (Open may state the same selection another way), and φ's
// for plain LoRA, which has none.
func shaping(t *testing.T, s adapter.Spec) string {
	t.Helper()
	raw, err := json.Marshal(s.Resolved())
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, k := range adapter.ShapingKeys() {
		phiKey := !slices.Contains([]string{"method", "r", "alpha", "rslora"}, k)
		if k != "target_modules" && (s.Method != adapter.LoRA || !phiKey) {
			out[k] = all[k]
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// perturbOwn draws the adapters' own trainable tensors afresh (lora_A, lora_B).
func perturbOwn(t *testing.T, m interface {
	TrainableTensors() []param.Tensor
}) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	for _, nt := range m.TrainableTensors() {
		if nt.Trainable {
			vals := tensortest.Values(t, nt.Tensor)
			for i := range vals {
				vals[i] = 0.3 * rng.NormFloat64()
			}
			tensortest.Set(t, nt.Tensor, vals)
		}
	}
}
