// Command gen writes the tiny checkpoints, inputs and adapter values of the model
// package's golden tests into model/testdata/golden/<case>/; golden.py then writes the
// reference outputs next to them. Regenerate everything with
//
//	go run ./model/testdata/gen && /usr/bin/python3 model/testdata/golden.py
//
// The output is deterministic: the same code writes the same bytes.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Small shapes (hidden 32, 4 heads of 8, 2 KV heads) keep each checkpoint near 200 kB.
var small = map[string]any{"hidden_size": 32, "intermediate_size": 64}

type testCase struct {
	name      string
	arch      string
	numLabels int
	overrides map[string]any
	adapters  bool
}

var cases = []testCase{
	{name: "llama", arch: "llama", adapters: true, overrides: map[string]any{
		"head_dim": 8, "attention_bias": true, "mlp_bias": true,
		// Llama 3.1 scaling with a short original context, so that the 4 frequencies of a
		// head of 8 cover the kept, smoothed and divided ranges.
		"rope_scaling": map[string]any{"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
			"high_freq_factor": 4.0, "original_max_position_embeddings": 64},
	}},
	{name: "qwen2", arch: "qwen2"}, // q/k/v biases, tied embeddings
	{name: "mistral", arch: "mistral", overrides: map[string]any{"head_dim": 8, "sliding_window": 3}},
	{name: "phi3", arch: "phi3"}, // fused qkv_proj and gate_up_proj
	{name: "roberta", arch: "roberta", numLabels: 3},
	{name: "bert", arch: "bert", numLabels: 1}, // regression (STS-B style)
}

// Adapter settings of the gradient golden; golden_test.go uses the same.
const (
	adapterRank = 2
	adapterSeed = 7
)

func main() {
	out := flag.String("out", "model/testdata/golden", "output directory")
	flag.Parse()
	for _, c := range cases {
		dir := filepath.Join(*out, c.name)
		if err := writeCase(dir, c); err != nil {
			log.Fatalf("%s: %v", c.name, err)
		}
		fmt.Println("wrote", dir)
	}
}

func writeCase(dir string, c testCase) error {
	ov := map[string]any{}
	for k, v := range small {
		ov[k] = v
	}
	for k, v := range c.overrides {
		ov[k] = v
	}
	cfg, err := hfinit.Write(dir, hfinit.Options{Arch: c.arch, Preset: "tiny", Seed: 1, NumLabels: c.numLabels,
		InitStd: 0.3, Perturb: true, Overrides: ov})
	if err != nil {
		return err
	}
	for _, f := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := writeInputs(filepath.Join(dir, "inputs.safetensors"), cfg); err != nil {
		return err
	}
	if c.adapters {
		return writeAdapters(filepath.Join(dir, "adapters.safetensors"), cfg)
	}
	return nil
}

// writeInputs writes a batch of two rows of 8 tokens; the second row has 3 padding
// tokens. Labels hide the first two tokens of row 0 and the padding of row 1.
func writeInputs(path string, cfg *model.Config) error {
	const b, t = 2, 8
	rng := rand.New(rand.NewPCG(2, 3))
	pad := int64(0)
	if id, ok := cfg.PadTokenID.First(); ok {
		pad = int64(id)
	} else if id, ok := cfg.EOSTokenID.First(); ok {
		pad = int64(id)
	}
	ids := make([]int64, b*t)
	mask := make([]int64, b*t)
	labels := make([]int64, b*t)
	for i := range ids {
		ids[i] = 5 + rng.Int64N(int64(cfg.VocabSize)-5)
		mask[i], labels[i] = 1, ids[i]
	}
	encoder := cfg.ModelType == "roberta" || cfg.ModelType == "bert"
	if encoder {
		ids[0], ids[t] = 0, 0 // <s> / [PAD]-free first token, as tokenizers put CLS first
		if cfg.ModelType == "bert" {
			ids[0], ids[t] = 2, 2 // [CLS]
		}
	}
	for i := t + 5; i < 2*t; i++ {
		ids[i], mask[i], labels[i] = pad, 0, model.IgnoreIndex
	}
	labels[0], labels[1], labels[t] = model.IgnoreIndex, model.IgnoreIndex, model.IgnoreIndex
	tensors := []safetensors.Tensor{
		i64("input_ids", ids, b, t), i64("attention_mask", mask, b, t), i64("labels", labels, b, t),
	}
	if cfg.ModelType == "bert" {
		tt := []int64{0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0}
		tensors = append(tensors, i64("token_type_ids", tt, b, t))
	}
	if encoder {
		if cfg.Regression() {
			data, _ := safetensors.EncodeFloat64s(safetensors.F64, []float64{0.7, -1.3})
			tensors = append(tensors, safetensors.Tensor{Name: "scores", DType: safetensors.F64, Shape: []int64{b}, Data: data})
		} else {
			tensors = append(tensors, i64("class_labels", []int64{2, 0}, b))
		}
	}
	return safetensors.Write(path, tensors, map[string]string{"format": "lrtrain-model-inputs"})
}

func i64(name string, xs []int64, shape ...int64) safetensors.Tensor {
	data, err := safetensors.EncodeInt64s(safetensors.I64, xs)
	if err != nil {
		panic(err)
	}
	return safetensors.Tensor{Name: name, DType: safetensors.I64, Shape: shape, Data: data}
}

// writeAdapters writes LR-LoRA tensors for every linear layer of the model (all-linear)
// with nonzero B and amplitudes and perturbed bandwidths, so that every trainable
// tensor gets a gradient.
func writeAdapters(path string, cfg *model.Config) error {
	specs, err := model.Layout(cfg)
	if err != nil {
		return err
	}
	grid, err := adapter.Default().Phi.GridPoints()
	if err != nil {
		return err
	}
	k := len(grid)
	rng := rand.New(rand.NewPCG(adapterSeed, 11))
	normal := func(n int, mean, std float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = mean + std*rng.NormFloat64()
		}
		return v
	}
	var tensors []safetensors.Tensor
	add := func(name string, vals []float64, shape ...int64) {
		data, _ := safetensors.EncodeFloat64s(safetensors.F64, vals)
		tensors = append(tensors, safetensors.Tensor{Name: name, DType: safetensors.F64, Shape: shape, Data: data})
	}
	var modules []string
	for _, sp := range specs {
		module, ok := strings.CutSuffix(sp.Name, ".weight")
		if !ok || len(sp.Shape) != 2 || sp.Head || strings.Contains(module, "embed") || module == "lm_head" {
			continue
		}
		modules = append(modules, module)
		dOut, dIn := sp.Shape[0], sp.Shape[1]
		r := int64(adapterRank)
		bound := 1 / math.Sqrt(float64(dIn))
		a := make([]float64, r*dIn)
		for i := range a {
			a[i] = (2*rng.Float64() - 1) * bound
		}
		add(module+".lora_A", a, r, dIn)
		add(module+".lora_B", normal(int(dOut*r), 0, 0.5), dOut, r)
		add(module+".phi.amplitude", normal(k, 0, 0.5), int64(k))
		add(module+".phi.bandwidth_raw", normal(k, lrlora.BandwidthRawInit, 0.3), int64(k))
		add(module+".phi.grid", grid, int64(k))
	}
	slices.Sort(modules)
	meta := map[string]string{"format": "lrtrain-model-adapters", "rank": fmt.Sprint(adapterRank),
		"alpha": fmt.Sprint(2 * adapterRank), "modules": strings.Join(modules, ",")}
	return safetensors.Write(path, tensors, meta)
}
