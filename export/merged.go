package export

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Result describes a finished export.
type Result struct {
	Dir     string   // the output directory
	DType   string   // torch_dtype of the weights: float32, bfloat16 or float16
	Tensors int      // tensors written
	Bytes   int64    // bytes of tensor data
	Merged  []string // adapted layers whose ΔW was merged (Merged) or saved (AdapterOnly)
	Files   []string // files in Dir, sorted
}

// Merged writes m as a plain Hugging Face model into the directory out: every tensor of
// m.Weights() under its Hugging Face name, with W0 + ΔW in place of W0 for each adapted
// layer (ΔW from Adapter.DeltaWeight, the sum checked by lrlora.Merge), the
// classification head as it is now (trained), all converted to the output dtype. Next
// to the weights go the base model's config.json with torch_dtype updated, its
// tokenizer files and generation_config.json (TokenizerFiles). Weights larger than
// Options.MaxShardBytes are sharded with model.safetensors.index.json, as
// transformers' save_pretrained does, so transformers, vLLM and llama.cpp's converter
// load the result like the base model.
//
// The merge happens in float32 (float64 for a float64 model) whatever the compute
// dtype, then rounds once to the output dtype. A merged weight with NaN or Inf
// entries fails the export with an error wrapping lrlora.ErrNonFinite that names the
// adapter. out is written through a temporary directory and a rename, so it never
// holds a partial export.
func Merged(m *model.Model, out string, o Options) (*Result, error) {
	base, err := o.baseDir(m)
	if err != nil {
		return nil, err
	}
	dt, torchName, err := outputDType(o.DType, m.Config().TorchDType)
	if err != nil {
		return nil, err
	}
	maxShard := o.MaxShardBytes
	if maxShard == 0 {
		maxShard = DefaultMaxShardBytes
	}
	if maxShard < 0 {
		return nil, fmt.Errorf("%w: max shard size %d", ErrConfig, maxShard)
	}
	if err := checkOutput(filepath.Clean(out), o.Overwrite); err != nil {
		return nil, err
	}
	cfgJSON, err := configJSON(m.Config(), torchName)
	if err != nil {
		return nil, err
	}
	tensors, merged, err := mergedTensors(m, dt)
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: out, DType: torchName, Tensors: len(tensors), Merged: merged}
	for _, t := range tensors {
		n, _ := safetensors.NumElements(t.Shape)
		res.Bytes += n * int64(dt.Size())
	}
	err = writeDir(out, o.Overwrite, func(tmp string) error {
		if err := safetensors.WriteSharded(tmp, tensors, maxShard, o.metadata()); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if _, err := copyModelFiles(base, tmp); err != nil {
			return err
		}
		// config.json last: it replaces the base's copy (not in TokenizerFiles anyway).
		return writeFileSync(filepath.Join(tmp, model.ConfigFileName), cfgJSON)
	})
	if err != nil {
		return nil, err
	}
	if res.Files, err = listFiles(out); err != nil {
		return nil, err
	}
	return res, nil
}

// mergedTensors describes every weight of m for the writer, each merged (the adapted
// ones) when the writer reaches it and streamed to the file a chunk at a time, so that
// the export holds one merged weight and one chunk beside the model, not an encoded
// copy of the model; it returns the names of the adapted layers.
func mergedTensors(m *model.Model, dt safetensors.DType) ([]safetensors.Tensor, []string, error) {
	adapted := map[string]*lrlora.Adapter{}
	for _, l := range m.Linears() {
		if ad := l.Adapter(); ad != nil {
			adapted[l.Name+".weight"] = ad
		}
	}
	var out []safetensors.Tensor
	var merged []string
	for _, w := range m.Weights() {
		shape, err := w.Tensor.Size()
		if err != nil {
			return nil, nil, fmt.Errorf("export: %s: %w", w.Name, err)
		}
		name, t, ad := w.Name, w.Tensor, adapted[w.Name]
		if ad != nil {
			merged = append(merged, ad.Name())
			delete(adapted, w.Name)
		}
		out = append(out, safetensors.Tensor{Name: name, DType: dt, Shape: shape, Stream: func(w io.Writer) error {
			src := t
			if ad != nil {
				owned, err := mergedWeight(ad)
				if err != nil {
					return err
				}
				defer owned.Drop()
				src = owned
			}
			return streamTensor(w, name, src, dt)
		}})
	}
	for name := range adapted { // cannot happen: every linear's weight is a bound weight
		return nil, nil, fmt.Errorf("export: adapted weight %s is not among the model's weights", name)
	}
	return out, merged, nil
}
