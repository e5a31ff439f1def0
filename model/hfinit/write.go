package hfinit

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// TransformersVersion is the transformers_version written into config.json.
const TransformersVersion = "4.44.2"

// Options says what Write writes.
type Options struct {
	Arch   string // llama, qwen2, mistral, phi3, roberta, bert
	Preset string // tiny, small, qwen2-0.5b
	Seed   uint64
	// DType of the weights on disk: "float32" (default) or "bfloat16".
	DType string
	// NumLabels of a classifier; 0 means transformers' default of 2.
	NumLabels int
	// InitStd overrides initializer_range for drawing the weights (0: use it).
	InitStd float64
	// Perturb draws norm weights around 1 and biases around 0 instead of exactly 1 and
	// 0, so that golden tests notice a norm weight or bias that is not applied.
	Perturb bool
	// Overrides are config.json keys set after the preset's (rope_scaling,
	// sliding_window, tie_word_embeddings, …); a nil value writes null.
	Overrides map[string]any
}

// Write writes a randomly initialised model in the Hugging Face layout into dir:
// config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
// special_tokens_map.json and, for causal LMs, generation_config.json. The same options
// give the same bytes. It returns the config as model.ReadConfig reads it back.
func Write(dir string, o Options) (*model.Config, error) {
	class, ok := Archs[o.Arch]
	if !ok {
		_, err := presetConfig(o.Arch, o.Preset, nil)
		return nil, err
	}
	st := safetensors.F32
	switch o.DType {
	case "", "float32":
		o.DType = "float32"
	case "bfloat16":
		st = safetensors.BF16
	default:
		return nil, fmt.Errorf("hfinit: dtype %q (want float32 or bfloat16)", o.DType)
	}
	vocab, maxLen := sizesFor(o)
	tok, err := newTokenizer(o.Arch, vocab, maxLen)
	if err != nil {
		return nil, err
	}
	cfgMap, err := presetConfig(o.Arch, o.Preset, tok)
	if err != nil {
		return nil, err
	}
	if o.Arch == "roberta" || o.Arch == "bert" {
		setNumLabels(cfgMap, max(o.NumLabels, 2))
		if o.NumLabels == 1 {
			setNumLabels(cfgMap, 1)
		}
	}
	for k, v := range o.Overrides {
		cfgMap[k] = v
	}
	cfgMap["torch_dtype"] = o.DType
	cfgMap["transformers_version"] = TransformersVersion
	cfgJSON, err := marshalIndent(pythonFloats(cfgMap))
	if err != nil {
		return nil, fmt.Errorf("hfinit: config: %w", err)
	}
	cfgPath := filepath.Join(dir, model.ConfigFileName)
	cfg, err := model.ParseConfig(cfgJSON, cfgPath)
	if err != nil {
		return nil, fmt.Errorf("hfinit: %s preset %s: %w", class, o.Preset, err)
	}
	if cfg.VocabSize < len(tok.tokens) {
		return nil, fmt.Errorf("hfinit: vocab_size %d is smaller than the tokenizer's %d tokens", cfg.VocabSize, len(tok.tokens))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("hfinit: %w", err)
	}
	if err := writeWeights(filepath.Join(dir, safetensors.SingleFileName), cfg, o, st); err != nil {
		return nil, err
	}
	files := []struct {
		name string
		gen  func() ([]byte, error)
	}{
		{"tokenizer.json", tok.tokenizerJSON},
		{"tokenizer_config.json", tok.tokenizerConfigJSON},
		{"special_tokens_map.json", tok.specialTokensMapJSON},
		{model.ConfigFileName, func() ([]byte, error) { return cfgJSON, nil }},
	}
	if o.Arch != "roberta" && o.Arch != "bert" {
		files = append(files, struct {
			name string
			gen  func() ([]byte, error)
		}{"generation_config.json", func() ([]byte, error) { return generationConfig(tok) }})
	}
	for _, f := range files {
		b, err := f.gen()
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, f.name), b, 0o644)
		}
		if err != nil {
			return nil, fmt.Errorf("hfinit: write %s: %w", filepath.Join(dir, f.name), err)
		}
	}
	return model.ReadConfig(cfgPath)
}

// sizesFor returns the vocabulary size (the tokenizer may not exceed it) and the
// tokenizer's model_max_length.
func sizesFor(o Options) (vocab, maxLen int) {
	s, ok := decoderShapes[o.Preset]
	if o.Arch == "roberta" || o.Arch == "bert" {
		s, ok = encoderShapes[o.Preset]
	}
	if !ok {
		return 1 << 20, 512 // the preset error comes from presetConfig
	}
	vocab, maxLen = s.vocab, s.maxPos
	if v, ok := o.Overrides["vocab_size"].(int); ok {
		vocab = v
	}
	return vocab, maxLen
}

func generationConfig(tok *tokenizerSpec) ([]byte, error) {
	doc := orderedObject{{"bos_token_id", tok.configBOS()}, {"eos_token_id", tok.eos}}
	if tok.pad >= 0 {
		doc = append(doc, kv{"pad_token_id", tok.pad})
	}
	doc = append(doc, kv{"transformers_version", TransformersVersion})
	return marshalIndent(doc)
}

// writeWeights draws every tensor of cfg's layout and writes model.safetensors. Each
// tensor has its own random stream, seeded by the seed and its name, so a tensor's
// values do not depend on the others.
func writeWeights(path string, cfg *model.Config, o Options, dt safetensors.DType) error {
	specs, err := model.Layout(cfg)
	if err != nil {
		return fmt.Errorf("hfinit: layout: %w", err)
	}
	std := cfg.InitializerRange
	if o.InitStd > 0 {
		std = o.InitStd
	}
	tensors := make([]safetensors.Tensor, 0, len(specs))
	for _, sp := range specs {
		h := fnv.New64a()
		h.Write([]byte(sp.Name))
		rng := rand.New(rand.NewPCG(o.Seed, h.Sum64()))
		n := int64(1)
		for _, d := range sp.Shape {
			n *= d
		}
		vals := make([]float32, n)
		for i := range vals {
			switch {
			case sp.Init == model.InitNormal:
				vals[i] = float32(rng.NormFloat64() * std)
			case sp.Init == model.InitOnes && o.Perturb:
				vals[i] = float32(1 + 0.2*rng.NormFloat64())
			case sp.Init == model.InitOnes:
				vals[i] = 1
			case o.Perturb: // biases
				vals[i] = float32(rng.NormFloat64() * std)
			}
		}
		data, err := safetensors.EncodeFloat32s(dt, vals)
		if err != nil {
			return fmt.Errorf("hfinit: %s: %w", sp.Name, err)
		}
		tensors = append(tensors, safetensors.Tensor{Name: sp.Name, DType: dt, Shape: sp.Shape, Data: data})
	}
	return safetensors.Write(path, tensors, map[string]string{"format": "pt"})
}

// pyFloat marshals like Python's repr of a float, as json.dumps writes it: 1e-06,
// 10000.0, 0.02.
type pyFloat float64

func (f pyFloat) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return nil, fmt.Errorf("hfinit: cannot write %v as JSON", x)
	}
	if x == 0 {
		return []byte("0.0"), nil
	}
	exp := math.Floor(math.Log10(math.Abs(x)))
	if exp < -4 || exp >= 16 {
		return []byte(strconv.FormatFloat(x, 'e', -1, 64)), nil
	}
	s := strconv.FormatFloat(x, 'f', -1, 64)
	for _, c := range s {
		if c == '.' {
			return []byte(s), nil
		}
	}
	return []byte(s + ".0"), nil
}

// pythonFloats replaces every float64 in a JSON value by a pyFloat.
func pythonFloats(v any) any {
	switch x := v.(type) {
	case float64:
		return pyFloat(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = pythonFloats(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = pythonFloats(e)
		}
		return out
	}
	return v
}
