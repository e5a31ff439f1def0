package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/train"
)

// trainFlags are train's command-line flags.
type trainFlags struct {
	cfgPath, resume, metricsAddr, initFrom string
	sets                                   []string
}

func newTrainCmd(g *globalFlags) *cobra.Command {
	var f trainFlags
	cmd := &cobra.Command{
		Use:   "train --config cfg.yaml [--set section.key=value]... [--resume auto|never|PATH]",
		Short: "Fine-tune a model with LR-LoRA adapters as a YAML configuration describes",
		Long: `train reads the configuration (strictly: unknown keys and bad values are reported
with file and line), builds the data, loads the base model, injects the adapters and
trains: AdamW, warmup then linear/cosine/constant decay, gradient clipping and
accumulation, evaluation and early stopping, checkpoints every checkpoint.every steps.

Output goes to output.dir: train.log (JSON lines), metrics.jsonl (one record per step
and per evaluation) and checkpoints/step-NNNNNN (adapter.safetensors,
optimizer.safetensors, trainer.json, manifest.json). --resume auto (the default)
continues from the newest valid checkpoint there, exactly; a checkpoint whose adapter
settings or base model differ from the configuration is refused.

--init-adapter DIR starts a fresh run from an adapter directory in PEFT's layout
(lrtrain export --adapter-only, or PEFT's save_pretrained of a LoRA adapter): its
method, r, alpha, rslora, dropout, target_modules (and φ's settings) become the
adapter section, before the command line's --set (which win), and its tensors
replace the initial adapters; AdamW starts afresh. A resumed run keeps its checkpoint's
values; give it the same --init-adapter (or the same adapter settings) to resume.

Charts: output.tensorboard true writes TensorBoard event files to output.dir/tensorboard
(train/loss, lr, grad_norm, tokens_per_s; eval/*; the stable rank of every adapted
module at each evaluation); --metrics-addr :9400 serves Prometheus metrics (lrtrain_*)
at http://ADDR/metrics from rank 0. Both are off by default.

Started by "lrtrain launch", every worker joins one data-parallel group through the
launcher's rendezvous (dist.backend auto: NCCL when the worker trains on a GPU, Gloo on
the CPU); rank 0 logs and saves. train.device auto trains on the worker's GPU when the
linked libtorch sees one.

Exit status: 0 when training finished (or had already finished), 1 when it failed
(missing tokenizer, empty dataset, non-finite loss, invalid checkpoint, ...), 2 for an
invalid command line or configuration (including a missing model directory or data file).`,
		Example: `  lrtrain train --config config/examples/alpaca-tiny.yaml
  lrtrain train --config cfg.yaml --set train.max_steps=200 --set train.lr=1e-4
  lrtrain train --config cfg.yaml --resume runs/x/checkpoints/step-000100
  lrtrain train --config cfg.yaml --init-adapter peft-adapter --set adapter.dropout=0
  lrtrain train --config cfg.yaml --set output.tensorboard=true --metrics-addr :9400
  lrtrain launch --standalone --nproc-per-node 2 -- train --config cfg.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runTrain(cmd, g, f) },
	}
	cmd.Flags().StringVarP(&f.cfgPath, "config", "c", "", "YAML configuration file (required)")
	cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a key, section.key=value (repeatable)")
	cmd.Flags().StringVar(&f.resume, "resume", "", "auto, never or a checkpoint directory (default: checkpoint.resume)")
	cmd.Flags().StringVar(&f.initFrom, "init-adapter", "", "start the adapters from an adapter directory in PEFT's layout (its settings become the adapter section; a resumed run ignores its values)")
	cmd.Flags().StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics on rank 0, e.g. :9400 (default: off)")
	return cmd
}

// runTrain loads the configuration, forms the worker's groups and runs the training.
func runTrain(cmd *cobra.Command, g *globalFlags, f trainFlags) error {
	c, initLoad, closeDir, err := loadTrainConfig(cmd, f)
	if err != nil {
		return err
	}
	defer closeDir()
	opts, err := train.FromConfig(c)
	if err != nil {
		return usageError{err}
	}
	resolved, err := c.Marshal()
	if err != nil {
		return err
	}
	obs, err := startObserver(c, f.metricsAddr, cmd.ErrOrStderr(), g.onStep)
	if err != nil {
		return err
	}
	defer obs.close()
	sctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancelRun := context.WithCancelCause(sctx)
	defer cancelRun(nil)
	wg, err := workerGroups(ctx, c, cancelRun)
	if err != nil {
		return err
	}
	defer wg.Close()
	env := train.Env{Group: wg.DP, ShardGroup: wg.Shard, ShardPrefetch: c.Dist.ShardPrefetch, Console: cmd.ErrOrStderr(), JSONConsole: g.logJSON,
		Config: string(resolved), LocalRank: wg.LocalRank, Device: &wg.Device,
		InitAdapters: initLoad}
	env.Hooks = obs.wrap(env.Hooks)
	_, err = train.Run(ctx, opts, env)
	if errors.Is(err, train.ErrConfig) {
		return usageError{err}
	}
	return err
}

// loadTrainConfig reads the configuration under the overrides: an --init-adapter
// directory's settings first, then --set (which win), then --resume. With
// --init-adapter it also returns the loader of the adapter's tensors and the closing of
// its directory.
func loadTrainConfig(cmd *cobra.Command, f trainFlags) (*config.Config, func([]param.Tensor) error, func(), error) {
	closeDir := func() {}
	if f.cfgPath == "" {
		return nil, nil, closeDir, usageError{errors.New("train: --config is required")}
	}
	overrides := f.sets
	var initLoad func([]param.Tensor) error
	if f.initFrom != "" {
		pre, load, closeAdapter, err := initAdapter(f.initFrom, cmd.ErrOrStderr())
		if err != nil {
			return nil, nil, closeDir, err
		}
		overrides, initLoad, closeDir = append(pre, f.sets...), load, closeAdapter
	}
	if f.resume != "" {
		overrides = append(overrides, "checkpoint.resume="+f.resume)
	}
	c, err := config.Load(f.cfgPath, overrides)
	if err != nil {
		closeDir()
		return nil, nil, func() {}, usageError{err}
	}
	return c, initLoad, closeDir, nil
}
