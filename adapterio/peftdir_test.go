package adapterio_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/adapterio"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// peftConfig is an adapter_config.json as PEFT writes it for a LoRA adapter (a
// subset of its keys: the others take PEFT's defaults), with one key lrtrain does
// not know, as a newer PEFT would add.
func peftConfig(extra string) string {
	return `{
  "alpha_pattern": {},
  "base_model_name_or_path": "some/llama",
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layers_pattern": null,
  "layers_to_transform": null,
  "lora_alpha": 16,
  "lora_dropout": 0.05,
  "modules_to_save": null,
  "peft_type": "LORA",
  "r": 4,
  "rank_pattern": {},
  "revision": null,
  "some_future_key": {"x": 1},
  "target_modules": "model\\.layers\\.\\d+\\.self_attn\\.(q_proj|v_proj)",
  "task_type": "CAUSAL_LM",
  "use_rslora": true` + extra + `
}`
}

// peftTensors draws lora_A [4, d_in] and lora_B [d_out, 4] for q_proj and v_proj of
// every layer of the tiny Llama cfg describes.
func peftTensors(cfg *model.Config) (map[string][]float32, map[string][]int64) {
	hidden, layers := cfg.HiddenSize, cfg.NumHiddenLayers
	kv := cfg.NumKeyValueHeads * cfg.HiddenSize / cfg.NumAttentionHeads
	vals, shapes := map[string][]float32{}, map[string][]int64{}
	rng := rand.New(rand.NewPCG(9, 9))
	add := func(name string, shape ...int64) {
		v := make([]float32, shape[0]*shape[1])
		for i := range v {
			v[i] = float32(0.2 * rng.NormFloat64())
		}
		vals[name], shapes[name] = v, shape
	}
	for i := 0; i < layers; i++ {
		for mod, out := range map[string]int{"q_proj": hidden, "v_proj": kv} {
			p := fmt.Sprintf("base_model.model.model.layers.%d.self_attn.%s.", i, mod)
			add(p+"lora_A.weight", 4, int64(hidden))
			add(p+"lora_B.weight", int64(out), 4)
		}
	}
	return vals, shapes
}

// A directory written as PEFT writes one (regex target_modules, bfloat16 tensors,
// rsLoRA, a key from a newer PEFT) attaches to the base model, and each adapted layer
// then adds ΔW = (α/√r)·B·A computed here in float64 from the file's values.
func TestReadPEFTDirectory(t *testing.T) {
	base := writeBase(t, "llama")
	m := load(t, base)
	cfg := m.Config()
	vals, shapes := peftTensors(cfg)
	dir := writeDir(t, peftConfig(""), safetensors.BF16, vals, shapes)
	d, err := adapterio.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !slices.Equal(d.Unknown, []string{"some_future_key"}) {
		t.Errorf("unknown keys %v", d.Unknown)
	}
	s := d.Spec
	if s.Method != adapter.LoRA || s.R != 4 || s.Alpha != 16 || !s.RSLoRA || s.Dropout != 0.05 || s.TargetModules.Regex == "" {
		t.Errorf("spec %+v", s)
	}
	l, err := d.Attach(m)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n := len(m.Adapters()); n != 2*cfg.NumHiddenLayers {
		t.Fatalf("%d adapters, want %d", n, 2*cfg.NumHiddenLayers)
	}
	scale := 16 / math.Sqrt(4)
	for _, ad := range m.Adapters() {
		dw, err := ad.DeltaWeight()
		if err != nil {
			t.Fatal(err)
		}
		got := tensortest.Values(t, dw)
		dw.Drop()
		f, _ := safetensors.Open(filepath.Join(dir, adapterio.WeightsFile))
		a, _ := f.Float64s(adapterio.FileName(ad.Name() + ".lora_A"))
		b, _ := f.Float64s(adapterio.FileName(ad.Name() + ".lora_B"))
		f.Close()
		in, out := len(a)/4, len(b)/4
		// The float32 product of r = 4 terms errs by at most ~4 roundings of each
		// partial sum: bound it by 8·ε32·s·Σ_k |B_ik||A_kj| per entry.
		const eps32 = 1.0 / (1 << 23)
		for i := 0; i < out; i++ {
			for j := 0; j < in; j++ {
				var want, mag float64
				for k := 0; k < 4; k++ {
					want += b[i*4+k] * a[k*in+j]
					mag += math.Abs(b[i*4+k] * a[k*in+j])
				}
				if diff := math.Abs(got[i*in+j] - scale*want); diff > 8*eps32*scale*mag {
					t.Fatalf("%s: ΔW[%d,%d] = %v, (α/√r)·B·A = %v", ad.Name(), i, j, got[i*in+j], scale*want)
				}
			}
		}
	}
}

// A null target_modules (PEFT's per-architecture default) is replaced by the modules
// the tensor file adapts.
func TestNullTargetModulesUseTheFile(t *testing.T) {
	base := writeBase(t, "llama")
	m := load(t, base)
	cfg := m.Config()
	vals, shapes := peftTensors(cfg)
	raw := strings.Replace(peftConfig(""), `"model\\.layers\\.\\d+\\.self_attn\\.(q_proj|v_proj)"`, "null", 1)
	d, err := adapterio.Open(writeDir(t, raw, safetensors.F32, vals, shapes))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n := len(d.Spec.TargetModules.Names); n != 2*cfg.NumHiddenLayers {
		t.Errorf("target modules %v", d.Spec.TargetModules)
	}
	l, err := d.Attach(m)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// What lrtrain's adapters cannot reproduce is refused, naming the key or tensor.
func TestRefusals(t *testing.T) {
	base := writeBase(t, "llama")
	m := load(t, base)
	cfg := m.Config()
	vals, shapes := peftTensors(cfg)
	for _, c := range []struct {
		name, extra, tensor string
		want                error
		says                string
	}{
		{"dora", `, "use_dora": true`, "", adapterio.ErrUnsupported, "use_dora"},
		{"rank_pattern", `, "rank_pattern": {"q_proj": 8}`, "", adapterio.ErrUnsupported, "rank_pattern"},
		{"pissa", `, "init_lora_weights": "pissa_niter_4"`, "", adapterio.ErrUnsupported, "init_lora_weights"},
		{"bias", `, "bias": "all"`, "", adapterio.ErrUnsupported, "bias"},
		{"magnitude", "", "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector", adapterio.ErrUnsupported, "lora_magnitude_vector"},
		{"rank", `, "r": 8`, "", adapterio.ErrConfig, "rank r = 8"},
		{"phi-in-lora", "", "base_model.model.model.layers.0.self_attn.q_proj.phi.grid", adapterio.ErrConfig, "phi.grid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			raw := strings.Replace(peftConfig(c.extra), `"r": 4,`, "", strings.Count(c.extra, `"r"`))
			v, s := vals, shapes
			if c.tensor != "" {
				v, s = cloneTensors(vals, shapes)
				v[c.tensor], s[c.tensor] = make([]float32, 4), []int64{4}
			}
			d, err := adapterio.Open(writeDir(t, raw, safetensors.F32, v, s))
			if err == nil {
				d.Close()
			}
			if !errors.Is(err, c.want) || !strings.Contains(fmt.Sprint(err), c.says) {
				t.Errorf("err = %v, want %v naming %q", err, c.want, c.says)
			}
		})
	}
	t.Run("peft_type", func(t *testing.T) {
		raw := strings.Replace(peftConfig(""), `"LORA"`, `"IA3"`, 1)
		if _, err := adapterio.Open(writeDir(t, raw, safetensors.F32, vals, shapes)); !errors.Is(err, adapterio.ErrUnsupported) || !strings.Contains(err.Error(), "IA3") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("pickle", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, adapterio.ConfigFile), []byte(peftConfig("")), 0o644)
		os.WriteFile(filepath.Join(dir, adapterio.PickleWeightsFile), []byte("PK"), 0o644)
		if _, err := adapterio.Open(dir); !errors.Is(err, adapterio.ErrUnsupported) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("modules", func(t *testing.T) { // the regex selects q and v; the file adapts q only
		v, s := cloneTensors(vals, shapes)
		for name := range v {
			if strings.Contains(name, "v_proj") {
				delete(v, name)
			}
		}
		d, err := adapterio.Open(writeDir(t, peftConfig(""), safetensors.F32, v, s))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		m2 := load(t, base)
		if _, err := d.Attach(m2); !errors.Is(err, adapterio.ErrMismatch) || !strings.Contains(err.Error(), "v_proj") {
			t.Errorf("err = %v", err)
		}
	})
}

func cloneTensors(v map[string][]float32, s map[string][]int64) (map[string][]float32, map[string][]int64) {
	v2, s2 := map[string][]float32{}, map[string][]int64{}
	for k := range v {
		v2[k], s2[k] = v[k], s[k]
	}
	return v2, s2
}
