package main

import (
	"encoding/json"
	"errors"
	"fmt"
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

// targetModules are the adapted projections: LR-LoRA's LLM default (adapter.LLMTargetModules).
var targetModules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// workload is what both sides run: the checkpoint, the adapters and the batch.
type workload struct {
	Preset  string // hfinit preset of the qwen2 checkpoint
	Layers  int    // num_hidden_layers (0: the preset's)
	Batch   int
	Seq     int
	Rank    int
	K       int
	Seed    uint64
	WorkDir string // holds model/, adapters.safetensors, inputs.safetensors
}

func (w workload) modelDir() string     { return filepath.Join(w.WorkDir, "model") }
func (w workload) adaptersPath() string { return filepath.Join(w.WorkDir, "adapters.safetensors") }
func (w workload) inputsPath() string   { return filepath.Join(w.WorkDir, "inputs.safetensors") }

// stampName marks a finished checkpoint; it holds the options it was written with.
const stampName = "modelspeed-stamp.json"

// prepare writes the checkpoint (or reuses one written with the same options), the
// adapter values and the token batch, and returns the model's config.
func (w workload) prepare() (*model.Config, error) {
	if w.Batch < 1 || w.Seq < 2 || w.Rank < 1 || w.K < 2 || w.Layers < 0 {
		return nil, fmt.Errorf("modelspeed: batch %d, seq %d, rank %d, K %d, layers %d: need batch ≥ 1, seq ≥ 2, rank ≥ 1, K ≥ 2, layers ≥ 0",
			w.Batch, w.Seq, w.Rank, w.K, w.Layers)
	}
	cfg, err := w.checkpoint()
	if err != nil {
		return nil, err
	}
	if err := writeAdapters(w.adaptersPath(), cfg, w.Rank, w.K, w.Seed); err != nil {
		return nil, err
	}
	if err := writeInputs(w.inputsPath(), cfg.VocabSize, w.Batch, w.Seq, w.Seed); err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkpoint writes a random Qwen2 checkpoint with the preset's layer shapes and
// w.Layers layers, unless the directory already holds one written with the same options.
func (w workload) checkpoint() (*model.Config, error) {
	o := hfinit.Options{Arch: "qwen2", Preset: w.Preset, Seed: 1}
	if w.Layers > 0 {
		o.Overrides = map[string]any{"num_hidden_layers": w.Layers}
	}
	stamp, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	dir := w.modelDir()
	stampPath := filepath.Join(dir, stampName)
	if old, err := os.ReadFile(stampPath); err == nil && string(old) == string(stamp) {
		if cfg, err := model.ReadConfig(dir); err == nil {
			return cfg, nil
		}
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	if err := os.Remove(stampPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	cfg, err := hfinit.Write(dir, o)
	if err != nil {
		return nil, fmt.Errorf("modelspeed: write checkpoint: %w", err)
	}
	if err := os.WriteFile(stampPath, stamp, 0o644); err != nil {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	return cfg, nil
}

// adaptedModules lists the module paths that get adapters, sorted.
func adaptedModules(cfg *model.Config) ([]string, error) {
	specs, err := model.Layout(cfg)
	if err != nil {
		return nil, fmt.Errorf("modelspeed: layout: %w", err)
	}
	targets := adapter.Targets{Names: targetModules}
	var mods []string
	for _, sp := range specs {
		if m, ok := strings.CutSuffix(sp.Name, ".weight"); ok && len(sp.Shape) == 2 && targets.Match(m) {
			mods = append(mods, m)
		}
	}
	slices.Sort(mods)
	return mods, nil
}

// writeAdapters writes float32 values for every adapter tensor, away from their
// initial values so that every trainable tensor gets a gradient and ΔW ≠ 0:
// A Kaiming-uniform as lrlora draws it, B ~ N(0, 0.1²) (s·B·A ≈ the scale of W0),
// a ~ N(0, 0.0002²) (s·φ(M) ≈ a tenth of it), β = ln(e−1) + N(0, 0.1²), the uniform
// grid. Ten times larger amplitudes make the step ill-conditioned: float32 rounding
// alone (torch.sinc in place of sin(πu)/(πu)) then moves gradient norms by 2%.
func writeAdapters(path string, cfg *model.Config, rank, k int, seed uint64) error {
	mods, err := adaptedModules(cfg)
	if err != nil {
		return err
	}
	phi := adapter.Default().Phi
	phi.K = k
	grid, err := phi.GridPoints()
	if err != nil {
		return fmt.Errorf("modelspeed: %w", err)
	}
	specs, _ := model.Layout(cfg) // adaptedModules checked it
	shapes := map[string][]int64{}
	for _, sp := range specs {
		shapes[sp.Name] = sp.Shape
	}
	rng := rand.New(rand.NewPCG(seed, 0xada))
	var tensors []safetensors.Tensor
	add := func(name string, vals []float64, shape ...int64) error {
		xs := make([]float32, len(vals))
		for i, v := range vals {
			xs[i] = float32(v)
		}
		data, err := safetensors.EncodeFloat32s(safetensors.F32, xs)
		tensors = append(tensors, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: data})
		return err
	}
	draw := func(n int, f func() float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = f()
		}
		return v
	}
	r := int64(rank)
	for _, m := range mods {
		dOut, dIn := shapes[m+".weight"][0], shapes[m+".weight"][1]
		bound := 1 / math.Sqrt(float64(dIn))
		errs := []error{
			add(m+".lora_A", draw(int(r*dIn), func() float64 { return (2*rng.Float64() - 1) * bound }), r, dIn),
			add(m+".lora_B", draw(int(dOut*r), func() float64 { return 0.1 * rng.NormFloat64() }), dOut, r),
			add(m+".phi.amplitude", draw(k, func() float64 { return 0.0002 * rng.NormFloat64() }), int64(k)),
			add(m+".phi.bandwidth_raw", draw(k, func() float64 { return lrlora.BandwidthRawInit + 0.1*rng.NormFloat64() }), int64(k)),
			add(m+".phi.grid", grid, int64(k)),
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("modelspeed: adapters of %s: %w", m, err)
		}
	}
	meta := map[string]string{"format": "lrtrain-modelspeed-adapters", "rank": fmt.Sprint(rank),
		"alpha": fmt.Sprint(2 * rank), "K": fmt.Sprint(k)}
	return safetensors.Write(path, tensors, meta)
}

// writeInputs writes input_ids (batch×seq int64) drawn uniformly from the vocabulary
// minus its first three ids; the labels are the inputs themselves.
func writeInputs(path string, vocab, batch, seq int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x1d5))
	ids := make([]int64, batch*seq)
	for i := range ids {
		ids[i] = 3 + rng.Int64N(int64(vocab-3))
	}
	data, err := safetensors.EncodeInt64s(safetensors.I64, ids)
	if err != nil {
		return fmt.Errorf("modelspeed: inputs: %w", err)
	}
	t := safetensors.Tensor{Name: "input_ids", DType: safetensors.I64, Shape: []int64{int64(batch), int64(seq)}, Data: data}
	return safetensors.Write(path, []safetensors.Tensor{t}, map[string]string{"format": "lrtrain-modelspeed-inputs"})
}
