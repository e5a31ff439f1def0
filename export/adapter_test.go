package export_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/export"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// The adapter-only export holds every adapter tensor (φ included) and the head under
// PEFT's names with their exact float32 values, and adapter_config.json describes them.
func TestAdapterOnly(t *testing.T) {
	base := writeBase(t, "roberta")
	m := adapted(t, base, "query,value,attention.output.dense", adapter.LRLoRA)
	out := filepath.Join(t.TempDir(), "adapter")
	res, err := export.AdapterOnly(m, out, export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Files, []string{export.AdapterConfigFile, export.AdapterWeightsFile}) {
		t.Errorf("files %v", res.Files)
	}
	f, err := safetensors.Open(filepath.Join(out, export.AdapterWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := m.TrainableTensors()
	if f.Len() != len(want) {
		t.Errorf("%d tensors in the file, the model has %d trainable tensors", f.Len(), len(want))
	}
	for _, nt := range want {
		name := "base_model.model." + nt.Name
		if strings.HasSuffix(name, ".lora_A") || strings.HasSuffix(name, ".lora_B") {
			name += ".weight"
		}
		got, err := f.Float64s(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if d := tensortest.MaxAbsDiff(got, float32Values(tensortest.Values(t, nt.Tensor))); d != 0 {
			t.Errorf("%s differs from the model's tensor by %g", name, d)
		}
	}
	for _, name := range []string{
		"base_model.model.roberta.encoder.layer.0.attention.self.query.phi.amplitude",
		"base_model.model.roberta.encoder.layer.1.attention.output.dense.phi.grid",
		"base_model.model.classifier.out_proj.weight",
	} {
		if _, ok := f.Info(name); !ok {
			t.Errorf("missing %s", name)
		}
	}

	var cfg map[string]any
	raw, _ := os.ReadFile(filepath.Join(out, export.AdapterConfigFile))
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	checks := map[string]any{
		"peft_type": "LRLORA", "task_type": "SEQ_CLS", "r": 4.0, "lora_alpha": 8.0,
		"base_model_name_or_path": base,
	}
	for k, v := range checks {
		if cfg[k] != v {
			t.Errorf("%s = %v, want %v", k, cfg[k], v)
		}
	}
	if got := strings.Join(toStrings(cfg["target_modules"]), ","); got != "attention.output.dense,query,value" {
		t.Errorf("target_modules %q", got)
	}
	if got := strings.Join(toStrings(cfg["modules_to_save"]), ","); got != "classifier" {
		t.Errorf("modules_to_save %q", got)
	}
	lr, _ := cfg["lrlora"].(map[string]any)
	if lr["method"] != "lrlora" || lr["K"] != 12.0 || lr["L"] != 3.0 || lr["grid"] != "uniform" || lr["basis"] != "sinc" || lr["scaling"] != 2.0 {
		t.Errorf("lrlora block %v", lr)
	}
	if n := len(toStrings(lr["modules"])); n != 6 {
		t.Errorf("lrlora.modules lists %d modules, want 6", n)
	}
}

// Plain LoRA adapters are marked LORA, so that PEFT loads them as they are, and a
// target list that a shorter suffix would over-select keeps the longer name.
func TestAdapterOnlyLoRATargets(t *testing.T) {
	base := writeBase(t, "llama")
	m := adapted(t, base, "re:model\\.layers\\.0\\..*(q_proj|down_proj)", adapter.LoRA)
	out := filepath.Join(t.TempDir(), "adapter")
	if _, err := export.AdapterOnly(m, out, export.Options{DType: "bfloat16"}); err != nil {
		t.Fatal(err)
	}
	var cfg export.AdapterConfig
	raw, _ := os.ReadFile(filepath.Join(out, export.AdapterConfigFile))
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.PEFTType != "LORA" || cfg.TaskType != "CAUSAL_LM" {
		t.Errorf("peft_type %q, task_type %q", cfg.PEFTType, cfg.TaskType)
	}
	want := []string{"0.mlp.down_proj", "0.self_attn.q_proj"}
	if !slices.Equal(cfg.TargetModules.Names, want) {
		t.Errorf("target_modules %v, want %v", cfg.TargetModules, want)
	}
	f, err := safetensors.Open(filepath.Join(out, export.AdapterWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	info, ok := f.Info("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")
	if !ok || info.DType != safetensors.BF16 {
		t.Errorf("lora_B: %+v, %v", info, ok)
	}
}

func TestAdapterOnlyWithoutAdapters(t *testing.T) {
	base := writeBase(t, "llama")
	m, err := model.Load(base)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := export.AdapterOnly(m, filepath.Join(t.TempDir(), "a"), export.Options{}); !errors.Is(err, export.ErrNoAdapters) {
		t.Errorf("err = %v, want ErrNoAdapters", err)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// float32Values rounds float64 values to float32 (the adapters' parameter dtype).
func float32Values(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(float32(x))
	}
	return out
}
