package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lrtrain/lrtrain/adapterio"
	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/export"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/train"
)

// adaptedModel is a base model with the adapters of a training checkpoint loaded.
type adaptedModel struct {
	*model.Model
	ckpt     string // the checkpoint directory
	run      string // the run directory, "" when unknown
	base     string // the base model directory
	adapters *train.Adapters
}

func (a *adaptedModel) Close() {
	a.Model.Close()
	a.adapters.Close()
}

// shared lists the tensors of a shared φ (cross-layer sharing), which the model does not.
func (a *adaptedModel) shared() []param.Tensor {
	var out []param.Tensor
	for _, nt := range a.adapters.Tensors {
		if strings.HasPrefix(nt.Name, lrlora.SharedPhiPrefix+".") {
			out = append(out, nt)
		}
	}
	return out
}

// resolveCheckpoint finds the checkpoint to load: --checkpoint names a step directory
// (step-NNNNNN) or a checkpoint root (its newest valid checkpoint); --run names a run
// directory (<run>/checkpoints, newest valid). It returns the step directory and the
// run directory when known.
func resolveCheckpoint(ckpt, run string) (dir, runDir string, err error) {
	switch {
	case ckpt != "" && run != "":
		return "", "", usageError{fmt.Errorf("give --checkpoint or --run, not both")}
	case ckpt == "" && run == "":
		return "", "", usageError{fmt.Errorf("--checkpoint or --run is required")}
	}
	root := ckpt
	if run != "" {
		root, runDir = filepath.Join(run, "checkpoints"), run
		if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
			root = run // a run whose checkpoints live in the run directory itself
		}
	}
	if _, err := os.Stat(filepath.Join(root, checkpoint.ManifestName)); err == nil {
		dir = root // a step directory
	} else {
		c, skipped, err := checkpoint.LatestValid(root)
		if err != nil {
			return "", "", err
		}
		for _, s := range skipped {
			fmt.Fprintf(os.Stderr, "lrtrain: skipped checkpoint %s: %v\n", s.Dir, s.Err)
		}
		dir = c.Dir
	}
	if runDir == "" {
		// <run>/checkpoints/step-N: the run is two levels up when it has metrics.jsonl.
		up := filepath.Dir(filepath.Dir(dir))
		if _, err := os.Stat(filepath.Join(up, train.MetricsFile)); err == nil {
			runDir = up
		}
	}
	return dir, runDir, nil
}

// openAdapted loads the base model of a checkpoint in float32 (or the model at
// modelDir, which must be the same base model) and the checkpoint's adapters.
func openAdapted(ckpt, run, modelDir string) (*adaptedModel, error) {
	dir, runDir, err := resolveCheckpoint(ckpt, run)
	if err != nil {
		return nil, err
	}
	saved, err := train.OpenCheckpoint(dir)
	if err != nil {
		return nil, err
	}
	base := saved.Manifest.BaseModel.Path
	if base == "" {
		base = saved.Manifest.Options.Model.Path
	}
	if modelDir != "" {
		if err := train.VerifyBaseModel(dir, modelDir); err != nil {
			return nil, err
		}
		base = modelDir
	}
	var opts []model.Option
	if n := saved.Manifest.Options.Model.NumLabels; n > 0 {
		opts = append(opts, model.WithNumLabels(n))
	}
	m, err := model.Load(base, opts...)
	if err != nil {
		return nil, fmt.Errorf("base model of %s: %w", dir, err)
	}
	ads, err := train.OpenAdapters(dir, m)
	if err != nil {
		m.Close()
		return nil, err
	}
	m.Train(false)
	return &adaptedModel{Model: m, ckpt: dir, run: runDir, base: base, adapters: ads}, nil
}

func newExportCmd() *cobra.Command {
	var ckpt, run, out, modelDir, dtype, shard string
	var adapterOnly, overwrite bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a fine-tuned model in the Hugging Face layout (merged, or adapters only)",
		Long: `export loads the base model and the adapters of a training checkpoint and writes
the merged model W0 + ΔW in the base model's Hugging Face layout — same tensor
names, config.json with torch_dtype updated, tokenizer files, generation config,
sharded with model.safetensors.index.json above --max-shard-size — so that
transformers, vLLM and llama.cpp's converter load it like the base. With
--adapter-only it writes adapter_model.safetensors and adapter_config.json in
PEFT's layout: for method lora exactly what PEFT's save_pretrained writes (PEFT's
LoraConfig keys, base_model.model.<module>.lora_A.weight / lora_B.weight), so
PeftModel.from_pretrained loads it; for lrlora and sinelora peft_type "LRLORA",
which PEFT refuses, with an "lrlora" block of φ's settings and φ's tensors as
<module>.phi.*. lrtrain eval --adapter and train --init-adapter read both back.
The output directory appears only once complete.`,
		Example: `  lrtrain export --run runs/tiny --out runs/tiny/merged
  lrtrain export --checkpoint runs/tiny/checkpoints/step-000200 --out merged-bf16 --dtype bfloat16
  lrtrain export --run runs/tiny --out adapter --adapter-only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			maxShard, err := config.ParseSize(shard)
			if err != nil {
				return usageError{err}
			}
			m, err := openAdapted(ckpt, run, modelDir)
			if err != nil {
				return err
			}
			defer m.Close()
			o := export.Options{DType: dtype, MaxShardBytes: maxShard, BaseDir: m.base, Overwrite: overwrite,
				Extra: m.shared(), Metadata: map[string]string{"lrtrain_checkpoint": m.ckpt}}
			var res *export.Result
			if adapterOnly {
				res, err = export.AdapterOnly(m.Model, out, o)
			} else {
				res, err = export.Merged(m.Model, out, o)
			}
			if err != nil {
				return err
			}
			what := "merged model"
			if adapterOnly {
				what = "adapters"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s to %s: %d tensors (%s, %.1f MB), %d adapted layers, from %s\n  %s\n",
				what, res.Dir, res.Tensors, res.DType, float64(res.Bytes)/1e6, len(res.Merged), m.ckpt, strings.Join(res.Files, " "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckpt, "checkpoint", "", "checkpoint directory (step-NNNNNN) or checkpoint root (its newest valid checkpoint)")
	f.StringVar(&run, "run", "", "run directory (its newest valid checkpoint)")
	f.StringVar(&out, "out", "", "output directory (must not exist unless --overwrite)")
	f.StringVar(&modelDir, "model", "", "base model directory (default: the one the checkpoint records; must be the same model)")
	f.StringVar(&dtype, "dtype", "", "dtype of the written weights: float32, bfloat16 or float16 (default: the base's torch_dtype; float32 for --adapter-only)")
	f.StringVar(&shard, "max-shard-size", "5GB", "largest safetensors shard, e.g. 5GB, 500MiB")
	f.BoolVar(&adapterOnly, "adapter-only", false, "write adapter_model.safetensors + adapter_config.json instead of the merged model")
	f.BoolVar(&overwrite, "overwrite", false, "replace an existing output directory")
	return cmd
}

// peftModel is a base model with the adapters of an adapter directory (PEFT's layout:
// lrtrain export --adapter-only, or PEFT's save_pretrained) attached.
type peftModel struct {
	*model.Model
	base   string // the base model directory
	loaded *adapterio.Loaded
}

func (p *peftModel) Close() {
	p.Model.Close()
	p.loaded.Close()
}

// openPEFT loads the base model — modelDir, else the adapter's base_model_name_or_path
// when that is a local model directory — in float32 and attaches the adapters of dir.
// A classification head whose label count differs from the base config's is loaded
// with the adapter's count.
func openPEFT(dir, modelDir string, warn io.Writer) (*peftModel, error) {
	d, err := adapterio.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	warnUnknown(warn, d)
	base := modelDir
	if base == "" {
		base = d.Config.BaseModelNameOrPath
		if _, err := os.Stat(filepath.Join(base, "config.json")); base == "" || err != nil {
			return nil, usageError{fmt.Errorf("--model is required: the adapter's base_model_name_or_path %q is not a local model directory", base)}
		}
	}
	m, err := model.Load(base)
	if err != nil {
		return nil, fmt.Errorf("base model of %s: %w", dir, err)
	}
	if n := headLabels(m, d); n > 0 {
		m.Close()
		if m, err = model.Load(base, model.WithNumLabels(n)); err != nil {
			return nil, fmt.Errorf("base model of %s: %w", dir, err)
		}
	}
	l, err := d.Attach(m)
	if err != nil {
		m.Close()
		return nil, err
	}
	m.Train(false)
	return &peftModel{Model: m, base: base, loaded: l}, nil
}

// headLabels returns the adapter's label count when its classification head's output
// layer has another row count than m's, else 0.
func headLabels(m *model.Model, d *adapterio.Dir) int {
	n := m.Config().NumLabels
	for _, h := range m.HeadTensors() {
		shape, err := h.Tensor.Size()
		if err != nil || len(shape) == 0 || shape[0] != int64(n) {
			continue
		}
		if got, ok := d.Shape(h.Name); ok && len(got) > 0 && got[0] != int64(n) {
			return int(got[0])
		}
	}
	return 0
}

func warnUnknown(w io.Writer, d *adapterio.Dir) {
	if len(d.Unknown) > 0 {
		fmt.Fprintf(w, "lrtrain: %s: ignoring keys this lrtrain does not know: %s\n",
			filepath.Join(d.Path, adapterio.ConfigFile), strings.Join(d.Unknown, ", "))
	}
}

// initAdapter prepares lrtrain train --init-adapter DIR: the config overrides that
// make the adapter section describe the adapter (put before the command line's own
// --set, which win), and the Env.InitAdapters hook that loads its tensors into the
// fresh run's adapters. close unmaps the tensor file after the run.
func initAdapter(dir string, warn io.Writer) (overrides []string, load func([]param.Tensor) error, close func(), err error) {
	d, err := adapterio.Open(dir)
	if err != nil {
		return nil, nil, nil, usageError{fmt.Errorf("--init-adapter: %w", err)}
	}
	warnUnknown(warn, d)
	fmt.Fprintf(warn, "lrtrain: adapters start from %s (%s, r=%d, %d modules): %s\n",
		dir, d.Config.PEFTType, d.Spec.R, len(d.Modules), strings.Join(d.ConfigOverrides(), " "))
	return d.ConfigOverrides(), d.LoadInto, func() { d.Close() }, nil
}
