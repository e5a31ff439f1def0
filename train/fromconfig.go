package train

import (
	"fmt"

	"github.com/lrtrain/lrtrain/config"
)

// FromConfig maps a loaded (resolved and validated) configuration onto Options.
//
// The backbone is held in one dtype: train.compute_dtype when the configuration sets it,
// model.dtype otherwise. Classification heads are always trained (adapter.modules_to_save
// is not consulted); their size comes from data.labels (1 for data.regression).
func FromConfig(c *config.Config) (Options, error) {
	tmpl, err := c.Data.Template.DataTemplate()
	if err != nil {
		return Options{}, fmt.Errorf("%w: data.template: %w", ErrConfig, err)
	}
	dtype := c.Model.DType
	if c.Where("train.compute_dtype") != "" {
		dtype = c.Train.ComputeDType
	}
	return Options{
		Model: ModelOptions{Path: c.Model.Path, DType: dtype, ActivationCheckpointing: c.Model.ActivationCheckpointing,
			RecomputeDelta: c.Model.RecomputeDelta, DeltaPerStep: c.Model.DeltaPerStep,
			SplitDelta: c.Model.SplitDelta, FusedLoss: c.Model.FusedLoss, LossChunk: c.Model.LossChunk},
		Adapter: c.Adapter,
		Data: DataOptions{Format: c.Data.Format, Train: c.Data.Train, Eval: c.Data.Eval, MaxLen: c.Data.MaxLen,
			Packing: c.Data.Packing, Template: tmpl, Labels: c.Data.Labels, Regression: c.Data.Regression,
			SkipBadRecords: c.Data.SkipBadRecords, Shuffle: c.Data.Shuffle, Seed: c.Data.Seed, LastBatch: c.Data.LastBatch},
		Train: TrainOptions{Seed: c.Train.Seed, MaxSteps: c.Train.MaxSteps, Epochs: c.Train.Epochs,
			MicroBatchSize: c.Train.MicroBatchSize, GradAccumSteps: c.Train.GradAccumSteps, LR: c.Train.LR,
			WeightDecay: c.Train.WeightDecay, Betas: c.Train.Betas, Eps: c.Train.Eps, WarmupRatio: c.Train.WarmupRatio,
			Schedule: c.Train.Schedule, GradClip: c.Train.GradClip, EvalEvery: c.Train.EvalEvery,
			Patience: c.Train.EarlyStoppingPatience, LogEvery: c.Train.LogEvery, Device: c.Train.Device},
		Checkpoint: CheckpointOptions{Dir: c.Checkpoint.Dir, Every: c.Checkpoint.Every, KeepLast: c.Checkpoint.KeepLast,
			Resume: c.Checkpoint.Resume},
		Output: OutputOptions{Dir: c.Output.Dir},
	}, nil
}
