package train

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/optim"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/phiop"
	"github.com/lrtrain/lrtrain/shard"
)

// adapterStream is the PCG stream the adapters' initial values are drawn from.
const adapterStream = 0x6c72747261696e // "lrtrain"

// run is one call of Run: what its setup builds and its steps change. Its methods are
// the phases loop.go strings together: setup here, the end in finish.go, a step in step.go,
// evaluation in eval.go, checkpoints in ckpt*.go, collectives in dist.go.
type run struct {
	env  Env
	opts Options // resolved
	g    collective.ProcessGroup
	rank int
	out  *runLog
	log  *zerolog.Logger
	dev  gotch.Device

	cacheLimit int64 // the CPU block cache's bound as installed (buildModel may raise it)

	saved *Saved    // the checkpoint resumed from, nil for a fresh run
	base  BaseModel // the base model's identity, recorded in every checkpoint

	exs      *examples
	collator *data.Collator
	sampler  *data.Sampler
	loader   *data.Loader
	total    int64 // optimizer steps of the whole run
	warmup   int
	sched    schedule

	m         *model.Model
	gatherer  *shard.Gatherer   // nil unless the backbone is sharded
	shared    *lrlora.SharedPhi // nil unless φ is shared
	pcg       *rand.PCG         // drew the adapters' initial values; saved in State.RNG
	params    []param.Tensor
	trainable []ts.NamedTensor // params' trainable subset, the optimizer's
	opt       *optim.AdamW
	man       Manifest
	count     model.ParamCount

	st         State
	res        *Result
	started    time.Time
	startStep  int64      // the step this process started from
	savedStep  int64      // the step the newest checkpoint holds (0: none yet, or a fresh run)
	evaluated  int64      // the step an evaluation due on resume evaluated, −1 if none
	peaks      allocPeaks // the CPU allocator's peaks over the run (steps reset its own)
	heldNoted  bool       // the first step that held ΔW (model.delta_per_step) logged it
	lossNoted  bool       // the first pass that computed its loss in the head (model.fused_loss) logged it
	shareNoted bool       // the first step logged whether it split ΔW (model.split_delta)
	split      splitStats // the steps that split ΔW (model.split_delta): their all-reduces
}

// open resolves the options, the group and the device, and opens the run's log (rank 0
// locks output.dir).
func (r *run) open(opts Options) error {
	var err error
	if r.opts, err = opts.resolve(); err != nil {
		return err
	}
	if r.g = r.env.Group; r.g == nil {
		r.g = single{}
	}
	r.rank = r.g.Rank()
	if r.env.Console == nil {
		r.env.Console = os.Stderr
	}
	if r.out, err = openRunLog(r.opts.Output.Dir, r.opts.Checkpoint.Dir, r.rank, r.env.Console, r.env.JSONConsole); err != nil {
		return err
	}
	r.log = &r.out.log
	if r.env.Device != nil {
		r.dev = *r.env.Device
	} else if r.dev, err = ResolveDevice(r.opts.Train.Device, r.env.LocalRank); err != nil {
		return err
	}
	return checkDevice(r.dev, r.opts)
}

// close releases what the run holds: the optimizer, the model, the gatherer, the shared
// φ and last the log (and the lock on output.dir). After a failure (failed) the
// gatherer does not wait for the other ranks to stop reading this rank's shards.
func (r *run) close(failed bool) {
	if r.opt != nil {
		r.opt.Close()
	}
	if r.m != nil {
		r.m.Close()
	}
	if r.gatherer != nil && failed {
		r.gatherer.Abort()
	} else if r.gatherer != nil {
		r.gatherer.Close()
	}
	if r.shared != nil {
		r.shared.Close()
	}
	if r.out != nil {
		r.out.close()
	}
}

// pickCheckpoint finds the checkpoint to resume from, if any, and checks it against the
// options before anything heavy is loaded: adapter-shaping settings and the base model
// must match. Rank 0 sets invalid newer checkpoints aside and drops the metrics logged
// after the one resumed from.
func (r *run) pickCheckpoint() error {
	saved, skipped, err := findResume(r.opts.Checkpoint.Resume, r.opts.Checkpoint.Dir)
	for _, s := range skipped {
		r.log.Warn().Str("dir", s.Dir).Err(s.Err).Msg("skipped checkpoint")
	}
	if err != nil {
		return err
	}
	if r.base, err = identifyBaseModel(r.opts.Model.Path, filepath.Join(r.opts.Output.Dir, WeightsHashFile)); err != nil {
		return err
	}
	if saved == nil {
		return nil
	}
	if r.rank == 0 && len(skipped) > 0 {
		moved, err := checkpoint.SetAside(r.opts.Checkpoint.Dir, saved.Dir, skipped)
		for _, dir := range moved {
			r.log.Warn().Str("moved_to", dir).Str("resuming_from", saved.Dir).Msg("set an invalid newer checkpoint aside")
		}
		if err != nil {
			return err
		}
	}
	note, err := saved.Manifest.BaseModel.compare(r.base)
	if err != nil {
		return fmt.Errorf("%w (checkpoint %s)", err, saved.Dir)
	}
	if note != "" {
		r.log.Warn().Msg(note)
	}
	warnings, err := reconcile(saved.Manifest.Options, r.opts)
	for _, w := range warnings {
		r.log.Warn().Str("checkpoint", saved.Dir).Msg(w)
	}
	if err != nil {
		return fmt.Errorf("%w (checkpoint %s)", err, saved.Dir)
	}
	if n, err := r.out.dropMetricsAfter(saved.Step, saved.State.EvalDue); err != nil || n > 0 {
		r.log.Info().Int("records", n).Int64("after_step", saved.Step).Err(err).Msg("dropped the metrics logged after the checkpoint")
	}
	r.saved = saved
	return nil
}

// loadData reads, tokenises and packs the data the same way on every rank, and sets up
// the sampler that gives each rank its share of every global batch (data.seed fixes the
// order, whatever the world size) and the run's length and schedule.
func (r *run) loadData() error {
	o := r.opts
	tok, err := loadTokenizer(o.Model.Path)
	if err != nil {
		return err
	}
	if r.exs, err = buildData(o, tok); err != nil {
		return err
	}
	for _, n := range r.exs.notes {
		r.log.Info().Msg(n)
	}
	lastBatch, _ := o.lastBatch()
	r.sampler, err = data.NewSampler(data.SamplerConfig{NumExamples: len(r.exs.train), Seed: o.Data.Seed,
		Sequential: !o.Data.Shuffle, WorldSize: r.g.Size(), Rank: r.rank, MicroBatch: o.Train.MicroBatchSize,
		AccumSteps: o.Train.GradAccumSteps, LastBatch: lastBatch})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if r.collator, err = data.NewCollator(tok, 0); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if r.loader, err = data.NewLoader(r.exs.train, r.sampler, r.collator); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if r.total = int64(o.Train.MaxSteps); r.total == 0 {
		r.total = int64(o.Train.Epochs * r.sampler.StepsPerEpoch())
	}
	r.warmup = warmupSteps(o.Train.WarmupRatio, int(r.total))
	r.sched, _ = scheduleOf(o.Train.Schedule)
	return nil
}

// buildModel loads the model (its frozen backbone partitioned across the shard group,
// if any) and injects the adapters, drawing their initial values from a Go PCG seeded
// by train.seed.
func (r *run) buildModel(ctx context.Context) error {
	var err error
	if r.m, r.gatherer, err = loadModel(ctx, r.opts, r.dev, r.env.ShardGroup); err != nil {
		return err
	}
	if r.gatherer != nil {
		if err := r.gatherer.SetPrefetch(r.env.ShardPrefetch); err != nil {
			return fmt.Errorf("%w: dist.shard_prefetch: %v", ErrConfig, err)
		}
		p := r.gatherer.Plan()
		ev := r.log.Info().Int("shard_group", r.env.ShardGroup.Size()).Int64("held_bytes", p.ShardBytes()).
			Int64("total_bytes", p.TotalBytes()).Int64("largest_unit_bytes", p.MaxUnitBytes()).
			Int("shard_prefetch", r.gatherer.Prefetch()).Str("shard_gather", r.gatherer.GatherPath())
		if !r.dev.IsCuda() && r.cacheLimit > 0 {
			// Gather buffers are allocated per unit and freed after it; room for them
			// in the CPU block cache keeps them from evicting the activations' blocks
			// (a tied embedding table of 545 MB cycling through a 1 GiB cache made
			// Qwen2-0.5B's sharded steps 10-20 % slower).
			r.cacheLimit += r.gatherer.BufferBound()
			phiop.SetCacheLimit(r.cacheLimit)
			ev = ev.Float64("cpu_cache_mib", mib(r.cacheLimit))
		}
		ev.Msg("frozen backbone sharded: each rank holds its part and gathers one block at a time")
	}
	r.pcg = rand.NewPCG(r.opts.Train.Seed, adapterStream)
	if r.shared, err = injectAdapters(r.m, r.opts, rand.New(r.pcg)); err != nil {
		return err
	}
	r.params = trainableList(r.m.TrainableTensors(), r.shared)
	r.trainable = optimParams(r.params)
	if r.count, err = r.m.CountParameters(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	nTrainable, err := param.Count(r.params) // shared φ included
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	r.man = Manifest{Options: r.opts, Config: r.env.Config, BaseModel: r.base, Architecture: r.m.Architecture().Name,
		WorldSize: r.g.Size(), TrainableParameters: nTrainable}
	r.m.Train(true)
	if r.gatherer != nil {
		r.chooseShardedBackward()
	}
	return nil
}

// newOptimizer builds AdamW (decoupled weight decay) over the trainable list.
func (r *run) newOptimizer() error {
	t := r.opts.Train
	opt, err := optim.NewAdamW(r.trainable, optim.AdamWConfig{Beta1: t.Betas[0], Beta2: t.Betas[1], Eps: t.Eps, WeightDecay: t.WeightDecay})
	if err != nil {
		return fmt.Errorf("%w: train: %w", ErrConfig, err)
	}
	if scale := r.opts.Adapter.LRScale; scale != 1 { // adapter.phi.lr_scale: a and β's rate
		for _, p := range r.trainable {
			if lrlora.IsPhiParameter(p.Name) {
				if err := opt.SetLRScale(p.Name, scale); err != nil {
					return fmt.Errorf("%w: train: adapter.phi.lr_scale: %w", ErrConfig, err)
				}
			}
		}
	}
	r.opt = opt
	return nil
}

// start sets where training starts: the checkpoint's exact state, or step 0 with rank
// 0's adapters on every rank. Dropout masks come from (seed, rank, pass count).
func (r *run) start(ctx context.Context) error {
	r.st, r.res = State{WorldSize: r.g.Size()}, &Result{}
	if r.saved != nil {
		if err := r.restore(ctx); err != nil {
			return err
		}
		r.res.ResumedFrom = r.saved.Dir
	} else if err := broadcastParams(ctx, r.g, r.params); err != nil {
		return err
	}
	r.m.SetDropoutSeed(r.opts.Train.Seed+uint64(r.rank)<<32, r.st.DropoutPasses)
	var err error
	if r.st.RNG, err = r.pcg.MarshalBinary(); err != nil {
		return fmt.Errorf("train: rng state: %w", err)
	}
	r.log.Info().Str("params", r.count.String()).Int64("steps", r.total).Int("warmup", r.warmup).
		Int("global_batch", r.sampler.GlobalBatchSize()).Int("world_size", r.g.Size()).Int64("start_step", r.st.Step).
		Str("resumed_from", r.res.ResumedFrom).Str("collectives", transport(r.g)).Msg("training")
	if r.saved == nil && startsAtSaddle(r.opts.Adapter) {
		r.log.Info().Str("phi_init", string(adapter.InitZero)).Msg(saddleNote)
	}
	return nil
}

// transport is how g moves its collectives' data, when its backend says
// (Gloo: TCP or shared memory), else "".
func transport(g collective.ProcessGroup) string {
	if t, ok := g.(interface{ Transport() string }); ok && g.Size() > 1 {
		return t.Transport()
	}
	return ""
}

// chooseShardedBackward picks how a sharded backbone's backward reaches the released
// weights: by recomputing each block (activation checkpointing, loadModel's default),
// or, with model.recompute_delta and activation_checkpointing off, by keeping every
// block's graph and gathering its weights again (model.SetRegather) where every linear
// layer is an LR-LoRA layer recomputing ΔW. It logs the choice.
func (r *run) chooseShardedBackward() {
	if !r.opts.Model.RecomputeDelta || r.opts.Model.ActivationCheckpointing {
		r.log.Info().Str("sharded_backward", "recompute blocks").Msg("sharded backbone: backward recomputes each block (activation checkpointing)")
		return
	}
	r.m.SetRegather(true)
	if err := r.m.RegatherReady(); err != nil {
		r.m.SetRegather(false)
		r.log.Warn().Str("sharded_backward", "recompute blocks").Err(err).
			Msg("sharded backbone: model.recompute_delta is on but blocks cannot keep their graphs; backward recomputes each block instead")
		return
	}
	r.m.SetCheckpointing(false)
	r.log.Info().Str("sharded_backward", "regather").
		Msg("sharded backbone: blocks keep their graphs (model.recompute_delta) and backward gathers each block's weights again instead of recomputing it")
}
