package export_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/export"
)

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
