package export_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/export"
	"github.com/lrtrain/lrtrain/safetensors"
)

// peftLoraKeys is every key PEFT 0.20.0 writes into adapter_config.json for a LoRA
// adapter — the dataclass fields of PeftConfigMixin, PeftConfig and LoraConfig
// (runtime_config is dropped by LoraConfig.to_dict) — with the JSON type of the value
// an unmodified LoraConfig holds. Read off PEFT's src/peft/config.py and
// src/peft/tuners/lora/config.py at tag v0.20.0; "str|list" is target_modules (a list
// of names or one pattern), "null|list" is modules_to_save; lora_alpha is annotated
// int, lora_dropout float (Python writes 0.0, not 0).
var peftLoraKeys = map[string]string{
	// PeftConfigMixin and PeftConfig
	"auto_mapping": "null", "base_model_name_or_path": "str", "inference_mode": "bool",
	"peft_type": "str", "peft_version": "str", "revision": "null", "task_type": "str",
	// LoraConfig
	"r": "int", "target_modules": "str|list", "exclude_modules": "null", "lora_alpha": "int",
	"lora_dropout": "float", "fan_in_fan_out": "bool", "bias": "str", "use_rslora": "bool",
	"modules_to_save": "null|list", "init_lora_weights": "bool", "layers_to_transform": "null",
	"layers_pattern": "null", "rank_pattern": "object", "alpha_pattern": "object",
	"megatron_config": "null", "megatron_core": "str", "trainable_token_indices": "null",
	"loftq_config": "object", "eva_config": "null", "corda_config": "null", "lora_ga_config": "null",
	"use_dora": "bool", "velora_config": "null", "alora_invocation_tokens": "null", "use_qalora": "bool",
	"qalora_group_size": "int", "monteclora_config": "null", "layer_replication": "null",
	"lora_bias": "bool", "target_parameters": "null", "use_bdlora": "null", "arrow_config": "null",
	"ensure_weight_tying": "bool",
}

// peftDefaults are LoraConfig's defaults for the keys lrtrain does not set.
var peftDefaults = map[string]string{
	"bias": `"none"`, "fan_in_fan_out": "false", "init_lora_weights": "true", "rank_pattern": "{}",
	"alpha_pattern": "{}", "loftq_config": "{}", "megatron_core": `"megatron.core"`, "use_dora": "false",
	"use_qalora": "false", "qalora_group_size": "16", "lora_bias": "false", "ensure_weight_tying": "false",
}

func jsonType(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case string:
		return "str"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	case json.Number:
		if strings.ContainsAny(x.String(), ".eE") {
			return "float"
		}
		return "int"
	}
	return fmt.Sprintf("%T", v)
}

// A plain LoRA export of a tiny Llama and a tiny Qwen2 is PEFT's layout: exactly
// LoraConfig's keys with PEFT's value types and defaults, sorted and indented as PEFT
// writes them; and exactly the tensors PEFT saves, base_model.model.<module>.lora_A.weight
// [r, d_in] and lora_B.weight [d_out, r], with the header's format "pt".
func TestAdapterOnlyLoRAIsPEFTLayout(t *testing.T) {
	for _, arch := range []string{"llama", "qwen2"} {
		t.Run(arch, func(t *testing.T) {
			base := writeBase(t, arch)
			m := adapted(t, base, strings.Join(adapter.LLMTargetModules, ","), adapter.LoRA)
			out := filepath.Join(t.TempDir(), "adapter")
			if _, err := export.AdapterOnly(m, out, export.Options{}); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(out, export.AdapterConfigFile))
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			var cfg map[string]any
			if err := dec.Decode(&cfg); err != nil {
				t.Fatal(err)
			}
			for k, want := range peftLoraKeys {
				v, ok := cfg[k]
				if !ok {
					t.Errorf("key %s missing", k)
				} else if got := jsonType(v); !slices.Contains(strings.Split(want, "|"), got) {
					t.Errorf("%s is a JSON %s (%v), PEFT's LoraConfig has %s", k, got, v, want)
				}
			}
			for k := range cfg {
				if _, ok := peftLoraKeys[k]; !ok {
					t.Errorf("key %s is not one of PEFT's LoraConfig", k)
				}
			}
			for k, want := range peftDefaults {
				if got, _ := json.Marshal(cfg[k]); string(got) != want {
					t.Errorf("%s = %s, PEFT's default is %s", k, got, want)
				}
			}
			want := map[string]any{"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base,
				"r": json.Number("4"), "lora_alpha": json.Number("8"), "use_rslora": false}
			for k, v := range want {
				if cfg[k] != v {
					t.Errorf("%s = %v, want %v", k, cfg[k], v)
				}
			}
			if got := strings.Join(toStrings(cfg["target_modules"]), ","); got != "down_proj,gate_proj,k_proj,o_proj,q_proj,up_proj,v_proj" {
				t.Errorf("target_modules %s", got)
			}
			// PEFT's json.dumps(indent=2, sort_keys=True): keys in order, two-space indent.
			var keys []string
			for _, line := range strings.Split(string(raw), "\n") {
				if k, ok := strings.CutPrefix(line, `  "`); ok && !strings.HasPrefix(k, " ") {
					keys = append(keys, k[:strings.IndexByte(k, '"')])
				}
			}
			if !slices.IsSorted(keys) || len(keys) != len(peftLoraKeys) {
				t.Errorf("top-level keys not sorted or not all at indent 2: %v", keys)
			}

			checkPEFTTensors(t, filepath.Join(out, export.AdapterWeightsFile), m.Config().HiddenSize,
				m.Config().IntermediateSize, m.Config().NumKeyValueHeads*m.Config().HiddenSize/m.Config().NumAttentionHeads,
				m.Config().NumHiddenLayers)
		})
	}
}

// checkPEFTTensors checks that path holds exactly the lora_A/lora_B tensors PEFT saves
// for r = 4 on q,k,v,o,gate,up,down of every layer, with PEFT's shapes.
func checkPEFTTensors(t *testing.T, path string, hidden, inter, kv, layers int) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata()["format"] != "pt" {
		t.Errorf("metadata %v lacks format pt", f.Metadata())
	}
	dims := map[string][2]int{ // module → (d_in, d_out)
		"self_attn.q_proj": {hidden, hidden}, "self_attn.k_proj": {hidden, kv}, "self_attn.v_proj": {hidden, kv},
		"self_attn.o_proj": {hidden, hidden}, "mlp.gate_proj": {hidden, inter}, "mlp.up_proj": {hidden, inter},
		"mlp.down_proj": {inter, hidden},
	}
	want := map[string][]int64{}
	for i := 0; i < layers; i++ {
		for mod, d := range dims {
			p := fmt.Sprintf("base_model.model.model.layers.%d.%s", i, mod)
			want[p+".lora_A.weight"] = []int64{4, int64(d[0])}
			want[p+".lora_B.weight"] = []int64{int64(d[1]), 4}
		}
	}
	if f.Len() != len(want) {
		t.Errorf("%d tensors, PEFT saves %d", f.Len(), len(want))
	}
	for name, shape := range want {
		info, ok := f.Info(name)
		if !ok {
			t.Errorf("missing %s", name)
		} else if !slices.Equal(info.Shape, shape) || info.DType != safetensors.F32 {
			t.Errorf("%s: %s%v, want F32%v", name, info.DType, info.Shape, shape)
		}
	}
}

// An independent reader of the files: testdata/peft_merge_check.py parses the
// safetensors files by hand in pure Python, takes r, lora_alpha and use_rslora from
// adapter_config.json, and checks merged = W0 + (lora_alpha/r)·B·A in float64 for one
// module, within a float32 rounding bound. It must pass on the merged export and fail
// when handed the base model as the "merged" one. Skipped without python3.
func TestMergedMatchesPEFTFormulaInPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	base := writeBase(t, "llama")
	m := adapted(t, base, strings.Join(adapter.LLMTargetModules, ","), adapter.LoRA)
	dir := t.TempDir()
	ad, merged := filepath.Join(dir, "adapter"), filepath.Join(dir, "merged")
	if _, err := export.AdapterOnly(m, ad, export.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := export.Merged(m, merged, export.Options{DType: "float32"}); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join("testdata", "peft_merge_check.py")
	for _, module := range []string{"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj", "model.layers.1.mlp.down_proj"} {
		out, err := exec.Command(py, script, ad, base, merged, module).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", module, err, out)
		} else {
			t.Logf("%s", strings.TrimSpace(string(out)))
		}
	}
	out, err := exec.Command(py, script, ad, base, base, "model.layers.0.self_attn.q_proj").CombinedOutput()
	if err == nil {
		t.Errorf("the check passed the base model as the merged one:\n%s", out)
	}
}
