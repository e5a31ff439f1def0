package hfinit

import (
	"fmt"
	"slices"
	"strings"
)

// Preset sizes. "tiny" is for tests (a forward pass in milliseconds), "small" for
// measurements on a CPU, "qwen2-0.5b" the real shapes of Qwen2-0.5B.
var Presets = []string{"tiny", "small", "qwen2-0.5b"}

// Archs are the --arch names and the transformers classes they write.
var Archs = map[string]string{
	"llama":   "LlamaForCausalLM",
	"qwen2":   "Qwen2ForCausalLM",
	"mistral": "MistralForCausalLM",
	"phi3":    "Phi3ForCausalLM",
	"roberta": "RobertaForSequenceClassification",
	"bert":    "BertForSequenceClassification",
}

// ArchNames lists the keys of Archs, sorted.
func ArchNames() []string {
	var names []string
	for n := range Archs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

type shape struct {
	hidden, layers, heads, kvHeads, inter, vocab, maxPos int
}

var decoderShapes = map[string]shape{
	"tiny":       {hidden: 64, layers: 2, heads: 4, kvHeads: 2, inter: 128, vocab: 512, maxPos: 512},
	"small":      {hidden: 512, layers: 8, heads: 8, kvHeads: 4, inter: 1408, vocab: 8192, maxPos: 2048},
	"qwen2-0.5b": {hidden: 896, layers: 24, heads: 14, kvHeads: 2, inter: 4864, vocab: 151936, maxPos: 131072},
}

var encoderShapes = map[string]shape{
	"tiny":  {hidden: 64, layers: 2, heads: 4, inter: 128, vocab: 512, maxPos: 128},
	"small": {hidden: 256, layers: 4, heads: 4, inter: 1024, vocab: 8192, maxPos: 512},
}

// presetConfig returns config.json's content for arch at preset, with the key set that
// transformers' save_pretrained writes for the architecture (its class-specific keys plus
// the base keys whose values differ from PretrainedConfig's). Token ids come from tok.
func presetConfig(arch, preset string, tok *tokenizerSpec) (map[string]any, error) {
	class, ok := Archs[arch]
	if !ok {
		return nil, fmt.Errorf("hfinit: unknown arch %q (want one of %s)", arch, strings.Join(ArchNames(), ", "))
	}
	if !slices.Contains(Presets, preset) {
		return nil, fmt.Errorf("hfinit: unknown preset %q (want one of %s)", preset, strings.Join(Presets, ", "))
	}
	if preset == "qwen2-0.5b" && arch != "qwen2" {
		return nil, fmt.Errorf("hfinit: preset qwen2-0.5b is the shape of Qwen2-0.5B and needs --arch qwen2, not %q", arch)
	}
	if arch == "roberta" || arch == "bert" {
		return encoderConfig(arch, class, encoderShapes[preset], tok), nil
	}
	return decoderConfig(arch, class, preset, decoderShapes[preset], tok), nil
}

func decoderConfig(arch, class, preset string, s shape, tok *tokenizerSpec) map[string]any {
	c := map[string]any{
		"architectures":           []string{class},
		"model_type":              arch,
		"attention_dropout":       0.0,
		"hidden_act":              "silu",
		"hidden_size":             s.hidden,
		"initializer_range":       0.02,
		"intermediate_size":       s.inter,
		"max_position_embeddings": s.maxPos,
		"num_attention_heads":     s.heads,
		"num_hidden_layers":       s.layers,
		"num_key_value_heads":     s.kvHeads,
		"rms_norm_eps":            1e-6,
		"rope_theta":              10000.0,
		"tie_word_embeddings":     false,
		"use_cache":               true,
		"vocab_size":              s.vocab,
		"bos_token_id":            tok.configBOS(),
		"eos_token_id":            tok.eos,
	}
	switch arch {
	case "llama":
		c["attention_bias"] = false
		c["mlp_bias"] = false
		c["pretraining_tp"] = 1
		c["rope_scaling"] = nil
		c["head_dim"] = s.hidden / s.heads
	case "qwen2":
		c["max_window_layers"] = s.layers
		c["sliding_window"] = s.maxPos
		c["use_sliding_window"] = false
		c["tie_word_embeddings"] = true
		if preset == "qwen2-0.5b" {
			c["rope_theta"] = 1000000.0
			c["max_window_layers"] = 24
		}
	case "mistral":
		c["head_dim"] = s.hidden / s.heads
		c["sliding_window"] = nil
	case "phi3":
		c["attention_bias"] = false
		c["embd_pdrop"] = 0.0
		c["resid_pdrop"] = 0.0
		c["original_max_position_embeddings"] = s.maxPos
		c["pad_token_id"] = tok.pad
		c["partial_rotary_factor"] = 1.0
		c["rope_scaling"] = nil
		c["sliding_window"] = nil
		c["rms_norm_eps"] = 1e-5
	}
	return c
}

func encoderConfig(arch, class string, s shape, tok *tokenizerSpec) map[string]any {
	c := map[string]any{
		"architectures":                []string{class},
		"model_type":                   arch,
		"attention_probs_dropout_prob": 0.1,
		"classifier_dropout":           nil,
		"hidden_act":                   "gelu",
		"hidden_dropout_prob":          0.1,
		"hidden_size":                  s.hidden,
		"initializer_range":            0.02,
		"intermediate_size":            s.inter,
		"layer_norm_eps":               1e-12,
		"max_position_embeddings":      s.maxPos,
		"num_attention_heads":          s.heads,
		"num_hidden_layers":            s.layers,
		"pad_token_id":                 tok.pad,
		"position_embedding_type":      "absolute",
		"type_vocab_size":              2,
		"use_cache":                    true,
		"vocab_size":                   s.vocab,
	}
	if arch == "roberta" {
		c["bos_token_id"] = tok.bos
		c["eos_token_id"] = tok.eos
		c["layer_norm_eps"] = 1e-5
		c["max_position_embeddings"] = s.maxPos + tok.pad + 1 // positions start after padding_idx
		c["type_vocab_size"] = 1
	}
	return c
}

// setNumLabels writes id2label and label2id as transformers does for num_labels != 2
// (two labels are PretrainedConfig's default and are left out).
func setNumLabels(c map[string]any, n int) {
	if n == 2 {
		return
	}
	id2label, label2id := map[string]any{}, map[string]any{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("LABEL_%d", i)
		id2label[fmt.Sprint(i)] = name
		label2id[name] = i
	}
	c["id2label"], c["label2id"] = id2label, label2id
}
