package export

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/safetensors"
)

// DefaultMaxShardBytes is transformers' default max_shard_size ("5GB", 5·10⁹ bytes).
const DefaultMaxShardBytes = 5_000_000_000

// Options configures Merged and AdapterOnly. The zero value is usable.
type Options struct {
	// DType of the written weights: "float32", "bfloat16" or "float16" (also "fp32",
	// "bf16", "fp16"). Empty means the base model's torch_dtype when it is one of those
	// (else float32) for Merged, and float32 for AdapterOnly.
	DType string
	// MaxShardBytes is the largest safetensors shard (Merged); 0 means 5 GB. A model
	// that does not fit in one shard is written as model-0000i-of-0000N.safetensors
	// with model.safetensors.index.json.
	MaxShardBytes int64
	// BaseDir is the base model directory whose config.json, tokenizer files and
	// generation_config.json are copied; empty means the directory config.json was
	// read from (model.Config().Path).
	BaseDir string
	// Overwrite replaces an existing output directory (atomically: the old one is
	// removed only after the new one is in place). Without it an existing output
	// directory is an error wrapping ErrExists.
	Overwrite bool
	// Extra lists adapter tensors the model does not list itself — the tensors of a
	// lrlora.SharedPhi (cross-layer sharing) — for AdapterOnly.
	Extra []param.Tensor
	// Metadata is added to every safetensors header; "format": "pt" is always set
	// (transformers refuses safetensors files without it).
	Metadata map[string]string
}

// outputDType resolves the dtype name to the safetensors dtype and the torch_dtype
// spelling written into config.json.
func outputDType(name, fallback string) (safetensors.DType, string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" {
		n = strings.ToLower(fallback)
	}
	switch n {
	case "", "float32", "fp32", "f32", "float":
		return safetensors.F32, "float32", nil
	case "bfloat16", "bf16":
		return safetensors.BF16, "bfloat16", nil
	case "float16", "fp16", "f16", "half":
		return safetensors.F16, "float16", nil
	}
	return "", "", fmt.Errorf("%w: %q (want float32, bfloat16 or float16)", ErrDType, name)
}

// baseDir is the directory the base model's files are copied from.
func (o Options) baseDir(m *model.Model) (string, error) {
	if o.BaseDir != "" {
		return o.BaseDir, nil
	}
	if p := m.Config().Path; p != "" {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%w: the model was not loaded from a directory; set Options.BaseDir", ErrConfig)
}

func (o Options) metadata() map[string]string {
	md := map[string]string{}
	for k, v := range o.Metadata {
		md[k] = v
	}
	md["format"] = "pt"
	return md
}
