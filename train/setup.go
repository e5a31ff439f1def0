package train

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/shard"
	"github.com/lrtrain/lrtrain/tokenizer"
)

// examples is the run's data, built and (optionally) packed.
type examples struct {
	train, eval []data.Example
	classify    bool
	notes       []string // summaries for the log
}

// buildData reads, tokenises and packs the training and evaluation files.
func buildData(o Options, tok data.Tokenizer) (*examples, error) {
	format, err := data.ParseFormat(o.Data.Format)
	if err != nil {
		return nil, fmt.Errorf("train: data.format: %w", err)
	}
	builder, err := data.NewBuilder(tok, data.BuildConfig{MaxLen: o.Data.MaxLen, Template: o.Data.Template})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	out := &examples{classify: format.Kind() == data.KindClassification}
	build := func(what string, paths []string) ([]data.Example, error) {
		ds, err := data.Read(data.ReadConfig{Format: format, Paths: paths, Labels: o.Data.Labels,
			Regression: o.Data.Regression, SkipBadRecords: o.Data.SkipBadRecords})
		if err != nil {
			return nil, fmt.Errorf("train: %s data: %w", what, err)
		}
		exs, sum, err := builder.Build(ds.Records)
		if err != nil {
			return nil, fmt.Errorf("train: %s data: %w", what, err)
		}
		if len(exs) == 0 {
			return nil, fmt.Errorf("train: %s data: %w: no example in %v", what, data.ErrEmpty, paths)
		}
		out.notes = append(out.notes, fmt.Sprintf("%s: %s; %s", what, ds.Summary, sum))
		if o.Data.Packing && !out.classify {
			packed, ps, err := data.Pack(exs, o.Data.MaxLen)
			if err != nil {
				return nil, fmt.Errorf("train: pack %s data: %w", what, err)
			}
			out.notes = append(out.notes, fmt.Sprintf("%s: packed %d examples into %d sequences of %d tokens (%.0f%% filled)",
				what, ps.Examples, ps.Sequences, o.Data.MaxLen, 100*ps.Fill))
			exs = packed
		}
		return exs, nil
	}
	if out.train, err = build("train", o.Data.Train); err != nil {
		return nil, err
	}
	if len(o.Data.Eval) > 0 {
		if out.eval, err = build("eval", o.Data.Eval); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// loadTokenizer reads <model>/tokenizer.json.
func loadTokenizer(modelDir string) (*tokenizer.Tokenizer, error) {
	path := filepath.Join(modelDir, "tokenizer.json")
	tok, err := tokenizer.Load(path)
	if err != nil {
		return nil, fmt.Errorf("train: tokenizer: %w", err)
	}
	return tok, nil
}

// loadModel loads the base model onto dev with the options' dtype, head size and
// checkpointing. With a shard group of more than one rank the frozen backbone is
// partitioned across it (shard.Load; activation checkpointing is then always on, as
// the gathered blocks are released after they run) and the model's gatherer is
// returned too: close the model, then the gatherer. It is nil otherwise.
func loadModel(ctx context.Context, o Options, dev gotch.Device, sg collective.ProcessGroup) (*model.Model, *shard.Gatherer, error) {
	if _, err := os.Stat(filepath.Join(o.Model.Path, "config.json")); err != nil {
		return nil, nil, fmt.Errorf("train: model.path: %s is not a Hugging Face model directory: %w", o.Model.Path, err)
	}
	dt, err := o.dtype()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: model.dtype: %v", ErrConfig, err)
	}
	opts := []model.Option{model.WithDType(dt), model.WithSeed(o.Train.Seed), model.WithDevice(dev)}
	if n := o.numLabels(); n > 0 {
		opts = append(opts, model.WithNumLabels(n))
	}
	if sg != nil && sg.Size() > 1 {
		m, g, err := shard.Load(ctx, sg, o.Model.Path, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("train: sharded backbone: %w", err)
		}
		m.SetCheckpointing(true)
		return m, g, nil
	}
	m, err := model.Load(o.Model.Path, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("train: %w", err)
	}
	m.SetCheckpointing(o.Model.ActivationCheckpointing)
	return m, nil, nil
}

// numLabels is the classifier's head size the options ask for: model.num_labels, or
// 1 for regression, or the number of data.labels; 0 keeps the checkpoint's.
func (o Options) numLabels() int {
	switch {
	case o.Model.NumLabels > 0:
		return o.Model.NumLabels
	case o.Data.Regression:
		return 1
	}
	return len(o.Data.Labels)
}

// injectAdapters attaches the adapters the options describe, drawing their initial
// values from rng. It returns the shared φ (nil without sharing), which the caller
// closes after the model.
func injectAdapters(m *model.Model, o Options, rng *rand.Rand) (*lrlora.SharedPhi, error) {
	spec := o.Adapter
	var shared *lrlora.SharedPhi
	var opts []lrlora.Option
	if spec.Method == adapter.LRLoRA && spec.Share != adapter.ShareNone {
		dt := gotch.Float // adapters keep float32 masters, float64 beside a float64 backbone
		if m.DType() == gotch.Double {
			dt = gotch.Double
		}
		var err error
		if shared, err = lrlora.NewSharedPhi(spec.Phi, dt, m.Device()); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		opts = append(opts, lrlora.WithSharedPhi(shared))
	}
	if _, err := m.Inject(spec, rng, opts...); err != nil {
		if shared != nil {
			shared.Close()
		}
		if errors.Is(err, model.ErrTarget) {
			return nil, fmt.Errorf("%w: adapter.target_modules: %w", ErrConfig, err)
		}
		if errors.Is(err, adapter.ErrInvalid) {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		return nil, fmt.Errorf("train: %w", err)
	}
	m.SetRecomputeDelta(o.Model.RecomputeDelta)
	m.SetFusedLoss(o.Model.FusedLoss, o.Model.LossChunk)
	return shared, nil
}
