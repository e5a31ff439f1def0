package hfinit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

func write(t *testing.T, o Options) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), o.Arch)
	if _, err := Write(dir, o); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func TestWriteIsDeterministic(t *testing.T) {
	for _, arch := range ArchNames() {
		a := write(t, Options{Arch: arch, Preset: "tiny", Seed: 5})
		b := write(t, Options{Arch: arch, Preset: "tiny", Seed: 5})
		c := write(t, Options{Arch: arch, Preset: "tiny", Seed: 6})
		entries, _ := os.ReadDir(a)
		for _, e := range entries {
			x, _ := os.ReadFile(filepath.Join(a, e.Name()))
			y, _ := os.ReadFile(filepath.Join(b, e.Name()))
			if !bytes.Equal(x, y) {
				t.Errorf("%s: %s differs between two writes with the same seed", arch, e.Name())
			}
		}
		x, _ := os.ReadFile(filepath.Join(a, "model.safetensors"))
		z, _ := os.ReadFile(filepath.Join(c, "model.safetensors"))
		if bytes.Equal(x, z) {
			t.Errorf("%s: seeds 5 and 6 give the same weights", arch)
		}
	}
}

// TestConfigAsTransformersWritesIt checks the key set and spelling of config.json.
func TestConfigAsTransformersWritesIt(t *testing.T) {
	common := []string{"architectures", "model_type", "torch_dtype", "transformers_version", "vocab_size",
		"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "hidden_act",
		"initializer_range", "max_position_embeddings"}
	extra := map[string][]string{
		"llama":   {"num_key_value_heads", "rms_norm_eps", "rope_theta", "rope_scaling", "attention_bias", "mlp_bias", "pretraining_tp", "tie_word_embeddings", "bos_token_id", "eos_token_id"},
		"qwen2":   {"num_key_value_heads", "rms_norm_eps", "rope_theta", "sliding_window", "use_sliding_window", "max_window_layers", "tie_word_embeddings"},
		"mistral": {"num_key_value_heads", "rms_norm_eps", "rope_theta", "sliding_window", "head_dim"},
		"phi3":    {"num_key_value_heads", "rms_norm_eps", "rope_theta", "rope_scaling", "resid_pdrop", "embd_pdrop", "original_max_position_embeddings", "pad_token_id"},
		"roberta": {"layer_norm_eps", "type_vocab_size", "hidden_dropout_prob", "attention_probs_dropout_prob", "pad_token_id", "bos_token_id", "eos_token_id", "position_embedding_type", "classifier_dropout"},
		"bert":    {"layer_norm_eps", "type_vocab_size", "hidden_dropout_prob", "attention_probs_dropout_prob", "pad_token_id", "position_embedding_type"},
	}
	for arch, keys := range extra {
		dir := write(t, Options{Arch: arch, Preset: "tiny"})
		cfg := readJSON(t, filepath.Join(dir, "config.json"))
		for _, k := range append(keys, common...) {
			if _, ok := cfg[k]; !ok {
				t.Errorf("%s: config.json lacks %q", arch, k)
			}
		}
		if got := cfg["architectures"].([]any)[0]; got != Archs[arch] {
			t.Errorf("%s: architectures[0] = %v", arch, got)
		}
		if cfg["model_type"] != arch || cfg["torch_dtype"] != "float32" {
			t.Errorf("%s: model_type %v, torch_dtype %v", arch, cfg["model_type"], cfg["torch_dtype"])
		}
		raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		if arch == "llama" && (!bytes.Contains(raw, []byte(`"rms_norm_eps": 1e-06,`)) || !bytes.Contains(raw, []byte(`"rope_theta": 10000.0,`))) {
			t.Errorf("floats are not spelled as Python writes them:\n%s", raw)
		}
	}
}

// TestTokenizerFiles checks the tokenizer's internal consistency and that encoding
// text with its merges (by rank, as BPE does) and decoding gives the text back.
func TestTokenizerFiles(t *testing.T) {
	br := byteRunes()
	for _, arch := range ArchNames() {
		dir := write(t, Options{Arch: arch, Preset: "tiny"})
		tok := readJSON(t, filepath.Join(dir, "tokenizer.json"))
		tcfg := readJSON(t, filepath.Join(dir, "tokenizer_config.json"))
		cfg := readJSON(t, filepath.Join(dir, "config.json"))
		m := tok["model"].(map[string]any)
		if m["type"] != "BPE" {
			t.Fatalf("%s: model type %v", arch, m["type"])
		}
		vocab := map[string]int{}
		ids := map[int]bool{}
		for k, v := range m["vocab"].(map[string]any) {
			id := int(v.(float64))
			if ids[id] {
				t.Errorf("%s: id %d used twice", arch, id)
			}
			ids[id], vocab[k] = true, id
		}
		if n := len(vocab); n > int(cfg["vocab_size"].(float64)) || n < 300 {
			t.Errorf("%s: %d tokens for vocab_size %v", arch, n, cfg["vocab_size"])
		}
		for i := 0; i < len(vocab); i++ {
			if !ids[i] {
				t.Errorf("%s: ids are not 0..%d (no %d)", arch, len(vocab)-1, i)
				break
			}
		}
		for b := 0; b < 256; b++ {
			if _, ok := vocab[string(br[b])]; !ok {
				t.Errorf("%s: byte %d has no token", arch, b)
			}
		}
		var merges [][2]string
		for _, s := range m["merges"].([]any) {
			parts := strings.Split(s.(string), " ")
			if len(parts) != 2 {
				t.Fatalf("%s: bad merge %q", arch, s)
			}
			_, ok0 := vocab[parts[0]]
			_, ok1 := vocab[parts[1]]
			if !ok0 || !ok1 {
				t.Errorf("%s: merge %q of unknown tokens", arch, s)
			}
			if _, ok := vocab[parts[0]+parts[1]]; !ok {
				t.Errorf("%s: merge %q has no token", arch, s)
			}
			merges = append(merges, [2]string{parts[0], parts[1]})
		}
		for _, a := range tok["added_tokens"].([]any) {
			e := a.(map[string]any)
			if vocab[e["content"].(string)] != int(e["id"].(float64)) || e["special"] != true {
				t.Errorf("%s: added token %v disagrees with the vocabulary", arch, e)
			}
		}
		for _, role := range []string{"bos", "eos", "pad"} {
			id, ok := cfg[role+"_token_id"]
			name, named := tcfg[role+"_token"].(string)
			if ok && id != nil && named && vocab[name] != int(id.(float64)) {
				t.Errorf("%s: config %s_token_id %v, tokenizer %q is %d", arch, role, id, name, vocab[name])
			}
		}
		text := "The model reads a prompt, and writes 42 answers!\n\tÉtude ünïcode"
		var back strings.Builder
		for _, piece := range encode(text, merges) {
			if _, ok := vocab[piece]; !ok {
				t.Fatalf("%s: %q encodes to %q, which is not in the vocabulary", arch, text, piece)
			}
			back.WriteString(piece)
		}
		if got := decodeBytes(back.String()); got != text {
			t.Errorf("%s: round trip gives %q", arch, got)
		}
	}
}

// encode applies merges by rank to each pre-tokenized word.
func encode(text string, merges [][2]string) []string {
	br := byteRunes()
	rank := map[[2]string]int{}
	for i, m := range merges {
		rank[m] = i
	}
	var out []string
	for _, w := range preTokenize(text) {
		var syms []string
		for _, b := range []byte(w) {
			syms = append(syms, string(br[b]))
		}
		for {
			best, at := len(merges), -1
			for i := 0; i+1 < len(syms); i++ {
				if r, ok := rank[[2]string{syms[i], syms[i+1]}]; ok && r < best {
					best, at = r, i
				}
			}
			if at < 0 {
				break
			}
			syms = slices.Replace(syms, at, at+2, syms[at]+syms[at+1])
		}
		out = append(out, syms...)
	}
	return out
}

func decodeBytes(s string) string {
	br := byteRunes()
	inv := map[rune]byte{}
	for b, r := range br {
		inv[r] = byte(b)
	}
	var out []byte
	for _, r := range s {
		out = append(out, inv[r])
	}
	return string(out)
}

// TestQwen2HalfBillionShapes checks the qwen2-0.5b preset against Qwen2-0.5B without
// writing its 2 GB of weights.
func TestQwen2HalfBillionShapes(t *testing.T) {
	tok, err := newTokenizer("qwen2", 151936, 131072)
	if err != nil {
		t.Fatal(err)
	}
	c, err := presetConfig("qwen2", "qwen2-0.5b", tok)
	if err != nil {
		t.Fatal(err)
	}
	c["torch_dtype"] = "bfloat16"
	raw, _ := marshalIndent(pythonFloats(c))
	cfg, err := model.ParseConfig(raw, "qwen2-0.5b")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := model.Layout(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, s := range specs {
		k := int64(1)
		for _, d := range s.Shape {
			k *= d
		}
		n += k
	}
	if n != 494_032_768 {
		t.Errorf("%d parameters, Qwen2-0.5B has 494,032,768", n)
	}
	if cfg.HiddenSize != 896 || cfg.NumHiddenLayers != 24 || cfg.NumAttentionHeads != 14 || cfg.NumKeyValueHeads != 2 ||
		cfg.IntermediateSize != 4864 || cfg.VocabSize != 151936 || !cfg.TieWordEmbeddings || cfg.RopeTheta != 1e6 {
		t.Errorf("config %+v", cfg)
	}
}

func TestWriteBFloat16(t *testing.T) {
	dir := write(t, Options{Arch: "qwen2", Preset: "tiny", DType: "bfloat16"})
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, n := range f.Names() {
		if info, _ := f.Info(n); info.DType != safetensors.BF16 {
			t.Errorf("%s is %s", n, info.DType)
		}
	}
	if cfg := readJSON(t, filepath.Join(dir, "config.json")); cfg["torch_dtype"] != "bfloat16" {
		t.Errorf("torch_dtype %v", cfg["torch_dtype"])
	}
}

func TestWriteErrors(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Arch: "gpt2", Preset: "tiny"}, `unknown arch "gpt2"`},
		{Options{Arch: "llama", Preset: "huge"}, `unknown preset "huge"`},
		{Options{Arch: "llama", Preset: "qwen2-0.5b"}, "needs --arch qwen2"},
		{Options{Arch: "bert", Preset: "qwen2-0.5b"}, "needs --arch qwen2"},
		{Options{Arch: "llama", Preset: "tiny", DType: "float8"}, `dtype "float8"`},
		{Options{Arch: "llama", Preset: "tiny", Overrides: map[string]any{"vocab_size": 100}}, "too small"},
		{Options{Arch: "llama", Preset: "tiny", Overrides: map[string]any{"num_key_value_heads": 3}}, "num_key_value_heads 3"},
	} {
		_, err := Write(filepath.Join(t.TempDir(), "m"), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.o, err, c.want)
		}
	}
}
