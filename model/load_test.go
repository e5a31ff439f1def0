package model_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// readTensors reads every tensor of dir/model.safetensors (copies).
func readTensors(t *testing.T, dir string) []safetensors.Tensor {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(dir, safetensors.SingleFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []safetensors.Tensor
	for _, n := range f.Names() {
		info, _ := f.Info(n)
		b, _ := f.Bytes(n)
		out = append(out, safetensors.Tensor{Name: n, DType: info.DType, Shape: info.Shape, Data: bytes.Clone(b)})
	}
	return out
}

// rewrite replaces dir/model.safetensors by edit(tensors).
func rewrite(t *testing.T, dir string, edit func([]safetensors.Tensor) []safetensors.Tensor) {
	t.Helper()
	ts := edit(readTensors(t, dir))
	if err := safetensors.Write(filepath.Join(dir, safetensors.SingleFileName), ts, nil); err != nil {
		t.Fatal(err)
	}
}

// wantLoadError loads dir and checks the error wraps sentinel and mentions every part.
func wantLoadError(t *testing.T, dir string, sentinel error, parts ...string) {
	t.Helper()
	m, err := model.Load(dir)
	if err == nil {
		m.Close()
		t.Fatalf("Load succeeded, want an error wrapping %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("error %q does not wrap %v", err, sentinel)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func editConfig(t *testing.T, dir string, from, to string) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(from)) {
		t.Fatalf("config.json has no %q", from)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(from), []byte(to), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	const (
		qName = "model.layers.1.self_attn.q_proj.weight"
		kName = "model.layers.1.self_attn.k_proj.weight" // 2 KV heads of 16: 32×64
	)
	cases := []struct {
		name     string
		arch     string
		break_   func(t *testing.T, dir string)
		sentinel error
		parts    []string // besides the file or directory
		file     string   // "config", "weights" or "dir": what the error must name
	}{
		{"unknown architecture", "llama", func(t *testing.T, dir string) {
			editConfig(t, dir, `"LlamaForCausalLM"`, `"GPT2LMHeadModel"`)
		}, model.ErrUnknownArchitecture, []string{"GPT2LMHeadModel", "LlamaForCausalLM"}, "config"},
		{"no config", "llama", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "config.json"))
		}, model.ErrConfig, []string{"does not exist"}, "config"},
		{"malformed config", "llama", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"architectures": ["LlamaForCausalLM"], `), 0o644)
		}, model.ErrConfig, nil, "config"},
		{"no architectures", "llama", func(t *testing.T, dir string) {
			editConfig(t, dir, `"architectures": [`, `"archs": [`)
		}, model.ErrConfig, []string{`"architectures"`}, "config"},
		{"heads do not divide", "qwen2", func(t *testing.T, dir string) {
			editConfig(t, dir, `"num_key_value_heads": 2`, `"num_key_value_heads": 3`)
		}, model.ErrConfig, []string{"num_key_value_heads 3"}, "config"},
		{"unsupported rope scaling", "llama", func(t *testing.T, dir string) {
			editConfig(t, dir, `"rope_scaling": null`, `"rope_scaling": {"rope_type": "yarn", "factor": 4.0}`)
		}, model.ErrUnsupported, []string{"yarn"}, "config"},
		{"unsupported activation", "mistral", func(t *testing.T, dir string) {
			editConfig(t, dir, `"hidden_act": "silu"`, `"hidden_act": "swiglu_oai"`)
		}, model.ErrUnsupported, []string{"swiglu_oai"}, "config"},
		{"missing tensor", "llama", func(t *testing.T, dir string) {
			rewrite(t, dir, func(x []safetensors.Tensor) []safetensors.Tensor {
				return slices.DeleteFunc(x, func(e safetensors.Tensor) bool { return e.Name == qName })
			})
		}, model.ErrMissingTensor, []string{qName, "LlamaForCausalLM"}, "weights"},
		{"unexpected tensor", "phi3", func(t *testing.T, dir string) {
			rewrite(t, dir, func(x []safetensors.Tensor) []safetensors.Tensor {
				return append(x, safetensors.Tensor{Name: "model.layers.0.mlp.gate_proj.weight",
					DType: safetensors.F32, Shape: []int64{1}, Data: make([]byte, 4)})
			})
		}, model.ErrUnexpectedTensor, []string{"model.layers.0.mlp.gate_proj.weight", "Phi3ForCausalLM"}, "weights"},
		{"wrong shape", "llama", func(t *testing.T, dir string) {
			rewrite(t, dir, func(x []safetensors.Tensor) []safetensors.Tensor {
				for i := range x {
					if x[i].Name == kName {
						x[i].Shape = []int64{x[i].Shape[1], x[i].Shape[0]}
					}
				}
				return x
			})
		}, model.ErrShape, []string{kName, "[64 32]", "[32 64]"}, "weights"},
		{"wrong shape of a fused projection", "phi3", func(t *testing.T, dir string) {
			rewrite(t, dir, func(x []safetensors.Tensor) []safetensors.Tensor {
				for i := range x {
					if x[i].Name == "model.layers.0.self_attn.qkv_proj.weight" {
						x[i].Shape, x[i].Data = []int64{64, 64}, x[i].Data[:64*64*4]
					}
				}
				return x
			})
		}, model.ErrShape, []string{"model.layers.0.self_attn.qkv_proj.weight", "[64 64]", "[128 64]"}, "weights"},
		{"unsupported dtype", "bert", func(t *testing.T, dir string) {
			rewrite(t, dir, func(x []safetensors.Tensor) []safetensors.Tensor {
				for i := range x {
					if x[i].Name == "bert.embeddings.LayerNorm.weight" {
						x[i].DType = safetensors.I32 // same size as F32
					}
				}
				return x
			})
		}, model.ErrDType, []string{"bert.embeddings.LayerNorm.weight", "I32"}, "weights"},
		{"corrupt file", "qwen2", func(t *testing.T, dir string) {
			p := filepath.Join(dir, safetensors.SingleFileName)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-100], 0o644)
		}, safetensors.ErrCorrupt, nil, "weights"},
		{"no weights", "roberta", func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, safetensors.SingleFileName))
		}, safetensors.ErrNotFound, []string{safetensors.IndexFileName}, "dir"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTiny(t, c.arch)
			c.break_(t, dir)
			where := map[string]string{"config": filepath.Join(dir, "config.json"),
				"weights": filepath.Join(dir, safetensors.SingleFileName), "dir": dir}[c.file]
			wantLoadError(t, dir, c.sentinel, append(c.parts, where)...)
		})
	}
}

func TestLoadShardedMatchesSingleFile(t *testing.T) {
	single := writeTiny(t, "mistral")
	sharded := writeTiny(t, "mistral")
	tensors := readTensors(t, sharded)
	os.Remove(filepath.Join(sharded, safetensors.SingleFileName))
	if err := safetensors.WriteSharded(sharded, tensors, 100_000, nil); err != nil {
		t.Fatal(err)
	}
	x, err := safetensors.OpenIndex(sharded)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(x.Shards()); n < 3 {
		t.Fatalf("%d shards, want several", n)
	}
	x.Close()
	a, b := mustLoad(t, single), mustLoad(t, sharded)
	ids, _ := model.Int64Tensor([]int64{3, 9, 27, 81, 243, 5}, 1, 6)
	la, err := a.Forward(model.Inputs{InputIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.Forward(model.Inputs{InputIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tensortest.Values(t, la), tensortest.Values(t, lb)) {
		t.Error("sharded checkpoint gives other logits than the single file")
	}

	// A shard the index names but the directory lacks is reported by name.
	shard := x.Shards()[1]
	os.Remove(filepath.Join(sharded, shard))
	wantLoadError(t, sharded, safetensors.ErrCorrupt, shard, safetensors.IndexFileName)
}

// TestLoadBF16 loads bfloat16 weights into float32 (exact: bf16 ⊂ f32) and into a
// bfloat16 compute dtype, whose logits stay within bfloat16 precision of float32's.
func TestLoadBF16(t *testing.T) {
	f32 := writeTiny(t, "llama")
	bf16 := writeTiny(t, "llama")
	rewrite(t, bf16, func(x []safetensors.Tensor) []safetensors.Tensor {
		for i := range x {
			vals := bytesToFloat32(x[i].Data)
			x[i].DType = safetensors.BF16
			x[i].Data, _ = safetensors.EncodeFloat32s(safetensors.BF16, vals)
		}
		return x
	})
	ids, _ := model.Int64Tensor([]int64{3, 9, 27, 81, 243, 5, 7, 11}, 2, 4)

	ref := mustLoad(t, f32)
	mf := mustLoad(t, bf16)
	w := mf.Weights()[0]
	if w.Tensor.DType() != gotch.Float {
		t.Errorf("bf16 on disk loads as %v with the default dtype, want float32", w.Tensor.DType())
	}
	mb := mustLoad(t, bf16, model.WithDType(gotch.BFloat16))
	if mb.Weights()[0].Tensor.DType() != gotch.BFloat16 {
		t.Errorf("WithDType(BFloat16) gives %v weights", mb.Weights()[0].Tensor.DType())
	}
	lr, _ := ref.Forward(model.Inputs{InputIDs: ids})
	lf, _ := mf.Forward(model.Inputs{InputIDs: ids})
	lb, err := mb.Forward(model.Inputs{InputIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if lb.DType() != gotch.BFloat16 {
		t.Errorf("bf16 model returns %v logits", lb.DType())
	}
	// Weights rounded to bf16 (8 bits of mantissa) move float32 logits a little; bf16
	// compute adds rounding of every activation. Logits are ≈0.1 here.
	checkClose(t, "bf16 weights in float32", tensortest.Values(t, lf), tensortest.Values(t, lr), 5e-3)
	checkClose(t, "bf16 compute", tensortest.Values(t, lb), tensortest.Values(t, lf), 2e-2)
}

func bytesToFloat32(b []byte) []float32 {
	f, err := safetensors.Decode(encodeOne(b))
	if err != nil {
		panic(err)
	}
	v, _ := f.Float32s("x")
	return v
}

// encodeOne wraps F32 bytes into a one-tensor safetensors image.
func encodeOne(b []byte) []byte {
	var buf bytes.Buffer
	safetensors.Encode(&buf, []safetensors.Tensor{{Name: "x", DType: safetensors.F32, Shape: []int64{int64(len(b) / 4)}, Data: b}}, nil)
	return buf.Bytes()
}

// TestLoadPretrainedEncoderBackbone loads a RoBERTa checkpoint saved as a bare
// RobertaModel with a masked-LM head, old LayerNorm gamma/beta names and no
// classification head, as roberta-base is: the head is created, the rest ignored.
func TestLoadPretrainedEncoderBackbone(t *testing.T) {
	dir := writeTiny(t, "roberta")
	rewrite(t, dir, func(x []safetensors.Tensor) []safetensors.Tensor {
		var out []safetensors.Tensor
		for _, e := range x {
			if strings.HasPrefix(e.Name, "classifier.") {
				continue
			}
			e.Name = strings.TrimPrefix(e.Name, "roberta.")
			e.Name = strings.Replace(e.Name, "LayerNorm.weight", "LayerNorm.gamma", 1)
			e.Name = strings.Replace(e.Name, "LayerNorm.bias", "LayerNorm.beta", 1)
			out = append(out, e)
		}
		return append(out,
			safetensors.Tensor{Name: "lm_head.bias", DType: safetensors.F32, Shape: []int64{2}, Data: make([]byte, 8)},
			safetensors.Tensor{Name: "pooler.dense.bias", DType: safetensors.F32, Shape: []int64{2}, Data: make([]byte, 8)})
	})
	m := mustLoad(t, dir, model.WithNumLabels(5), model.WithSeed(9))
	heads := m.HeadTensors()
	var names []string
	for _, h := range heads {
		names = append(names, h.Name)
		if ok, _ := h.Tensor.RequiresGrad(); !ok {
			t.Errorf("head tensor %s does not require grad", h.Name)
		}
	}
	want := []string{"classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight", "classifier.out_proj.bias"}
	if !slices.Equal(names, want) {
		t.Errorf("head tensors %v, want %v", names, want)
	}
	if got := m.NewlyInitialized(); !slices.Equal(got, want) {
		t.Errorf("newly initialised %v, want %v", got, want)
	}
	ids, _ := model.Int64Tensor([]int64{0, 9, 27, 2, 1, 1}, 2, 3)
	logits, err := m.Forward(model.Inputs{InputIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if s := shapeOf(t, logits); s != "[2 5]" {
		t.Errorf("logits %s, want [2 5]", s)
	}
}

// TestLoadTiedCheckpointWithHeadCopy accepts a tied model whose file also holds
// lm_head.weight, as some exporters write it.
func TestLoadTiedCheckpointWithHeadCopy(t *testing.T) {
	dir := writeTiny(t, "qwen2")
	rewrite(t, dir, func(x []safetensors.Tensor) []safetensors.Tensor {
		for _, e := range x {
			if e.Name == "model.embed_tokens.weight" {
				c := e
				c.Name = "lm_head.weight"
				return append(x, c)
			}
		}
		return x
	})
	mustLoad(t, dir)
}

// TestNumLabelsOverrideResizesHead fine-tunes a 2-label classifier checkpoint for 3
// labels: the output layer is drawn afresh, the rest of the head is kept.
func TestNumLabelsOverrideResizesHead(t *testing.T) {
	dir := writeTiny(t, "bert")
	m := mustLoad(t, dir, model.WithNumLabels(3))
	if m.Config().NumLabels != 3 {
		t.Errorf("num_labels %d", m.Config().NumLabels)
	}
	for _, h := range m.HeadTensors() {
		if h.Name == "classifier.weight" {
			if s := shapeOf(t, h.Tensor); s != "[3 64]" {
				t.Errorf("classifier.weight %s, want [3 64]", s)
			}
		}
	}
	// Without the override the same checkpoint still loads as a 2-label model.
	if n := mustLoad(t, dir).Config().NumLabels; n != 2 {
		t.Errorf("num_labels %d without override", n)
	}
}
