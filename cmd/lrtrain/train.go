package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/ncclpg"
	"github.com/lrtrain/lrtrain/dist/launch"
	"github.com/lrtrain/lrtrain/dist/rdzv"
	"github.com/lrtrain/lrtrain/train"
)

func newTrainCmd(g *globalFlags) *cobra.Command {
	var cfgPath, resume string
	var sets []string
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
  lrtrain launch --standalone --nproc-per-node 2 -- train --config cfg.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgPath == "" {
				return usageError{errors.New("train: --config is required")}
			}
			overrides := sets
			if resume != "" {
				overrides = append(overrides, "checkpoint.resume="+resume)
			}
			c, err := config.Load(cfgPath, overrides)
			if err != nil {
				return usageError{err}
			}
			opts, err := train.FromConfig(c)
			if err != nil {
				return usageError{err}
			}
			resolved, err := c.Marshal()
			if err != nil {
				return err
			}
			sctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancelRun := context.WithCancelCause(sctx)
			defer cancelRun(nil)
			group, localRank, closeGroup, err := workerGroup(ctx, c, cancelRun)
			if err != nil {
				return err
			}
			defer closeGroup()
			env := train.Env{Group: group, Console: cmd.ErrOrStderr(), JSONConsole: g.logJSON, Config: string(resolved),
				LocalRank: localRank}
			_, err = train.Run(ctx, opts, env)
			if errors.Is(err, train.ErrConfig) {
				return usageError{err}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "YAML configuration file (required)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "override a key, section.key=value (repeatable)")
	cmd.Flags().StringVar(&resume, "resume", "", "auto, never or a checkpoint directory (default: checkpoint.resume)")
	return cmd
}

// workerGroup returns the data-parallel group of a worker started by lrtrain launch
// (nil for a single process) and the worker's local rank: it opens the worker's
// rendezvous session for the launcher's round and forms the group through it (NCCL on
// the worker's GPU, Gloo on the CPU). When the session is lost the group is aborted and
// the run cancelled with a cause naming the rendezvous (rank 0 then saves its last
// completed step).
func workerGroup(ctx context.Context, c *config.Config, cancelRun context.CancelCauseFunc) (collective.ProcessGroup, int, func(), error) {
	if _, ok := os.LookupEnv("LRTRAIN_RDZV_JOB"); !ok {
		return nil, 0, func() {}, nil
	}
	we, err := launch.ReadWorkerEnv(os.LookupEnv)
	if err != nil {
		return nil, 0, nil, usageError{err}
	}
	if we.WorldSize == 1 {
		return nil, we.LocalRank, func() {}, nil
	}
	dev, err := train.ResolveDevice(c.Train.Device, we.LocalRank)
	if err != nil {
		return nil, 0, nil, usageError{err}
	}
	backend := c.Dist.Backend
	if backend == "auto" {
		backend = "gloo"
		if dev.IsCuda() {
			backend = "nccl"
		}
	}
	if backend == "nccl" && !dev.IsCuda() {
		return nil, 0, nil, usageError{fmt.Errorf("train: dist.backend nccl needs a GPU, and train.device %q resolved to the CPU "+
			"(the linked libtorch sees no CUDA device); use dist.backend gloo or auto", c.Train.Device)}
	}
	g, closeGroup, err := formGroup(ctx, we, backend, dev.Value, c.Dist.Timeout, cancelRun)
	return g, we.LocalRank, closeGroup, err
}

// formGroup opens the worker's rendezvous session and forms its backend's group.
func formGroup(ctx context.Context, we launch.WorkerEnv, backend string, gpu int, timeout time.Duration,
	cancelRun context.CancelCauseFunc) (collective.ProcessGroup, func(), error) {
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	w, err := rdzv.OpenWorker(ctx, we.Job, we.Round, we.Rank, we.WorldSize, we.RdzvOptions()...)
	if err != nil {
		return nil, nil, fmt.Errorf("train: rank %d: rendezvous: %w", we.Rank, err)
	}
	closed := make(chan struct{})
	go func() {
		select {
		case <-w.Done():
			cancelRun(fmt.Errorf("rank %d: %w (etcd at %v)", we.Rank, rdzv.ErrSessionLost, we.Endpoints))
		case <-closed:
		}
	}()
	var g collective.ProcessGroup
	if backend == "nccl" {
		g, err = ncclpg.New(ctx, ncclpg.Config{Rank: we.Rank, Size: we.WorldSize, Device: gpu, Store: w,
			AbortOn: w.Done(), Timeout: timeout})
	} else {
		host := "" // Gloo resolves the node's hostname
		if we.NumNodes == 1 {
			host = "127.0.0.1"
		}
		g, err = collective.NewGloo(ctx, collective.Config{Rank: we.Rank, Size: we.WorldSize, Store: w,
			AbortOn: w.Done(), Hostname: host, Timeout: timeout})
	}
	if err != nil {
		w.Close()
		return nil, nil, fmt.Errorf("train: rank %d: form the %s group: %w", we.Rank, backend, err)
	}
	return g, func() { close(closed); g.Close(); w.Close() }, nil
}
