package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/optim"
	"github.com/lrtrain/lrtrain/phiop"
	"github.com/sugarme/gotch"
)

// adapterStream is the PCG stream the adapters' initial values are drawn from.
const adapterStream = 0x6c72747261696e // "lrtrain"

// Run trains the adapters that opts describes, from scratch or from a checkpoint (see
// CheckpointOptions.Resume), and returns how the run ended. Every rank of env.Group
// calls it with the same options. It blocks the calling goroutine, which it locks to
// its OS thread (libtorch's grad mode is per thread).
func Run(ctx context.Context, opts Options, env Env) (*Result, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	phiop.InitThreads()

	opts, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	g := env.Group
	if g == nil {
		g = single{}
	}
	rank, world := g.Rank(), g.Size()
	if env.Console == nil {
		env.Console = os.Stderr
	}
	out, err := openRunLog(opts.Output.Dir, rank, env.Console, env.JSONConsole)
	if err != nil {
		return nil, err
	}
	defer out.close()
	log := &out.log
	var dev gotch.Device
	if env.Device != nil {
		dev = *env.Device
	} else {
		dev, err = ResolveDevice(opts.Train.Device, env.LocalRank)
	}
	if err == nil {
		err = checkDevice(dev, opts)
	}
	if err != nil {
		return nil, err
	}

	// 1. The checkpoint to resume from, checked against the options before anything
	// heavy is loaded: adapter-shaping settings and the base model must match.
	saved, skipped, err := findResume(opts.Checkpoint.Resume, opts.Checkpoint.Dir)
	for _, s := range skipped {
		log.Warn().Str("dir", s.Dir).Err(s.Err).Msg("skipped checkpoint")
	}
	if err != nil {
		return nil, err
	}
	base, err := identifyBaseModel(opts.Model.Path, filepath.Join(opts.Output.Dir, WeightsHashFile))
	if err != nil {
		return nil, err
	}
	if saved != nil && rank == 0 && len(skipped) > 0 {
		moved, err := checkpoint.SetAside(opts.Checkpoint.Dir, saved.Dir, skipped)
		for _, dir := range moved {
			log.Warn().Str("moved_to", dir).Str("resuming_from", saved.Dir).Msg("set an invalid newer checkpoint aside")
		}
		if err != nil {
			return nil, err
		}
	}
	if saved != nil {
		note, err := saved.Manifest.BaseModel.compare(base)
		if err != nil {
			return nil, fmt.Errorf("%w (checkpoint %s)", err, saved.Dir)
		}
		if note != "" {
			log.Warn().Msg(note)
		}
		warnings, err := reconcile(saved.Manifest.Options, opts)
		for _, w := range warnings {
			log.Warn().Str("checkpoint", saved.Dir).Msg(w)
		}
		if err != nil {
			return nil, fmt.Errorf("%w (checkpoint %s)", err, saved.Dir)
		}
		if n, err := out.dropMetricsAfter(saved.Step, saved.State.EvalDue); err != nil || n > 0 {
			log.Info().Int("records", n).Int64("after_step", saved.Step).Err(err).Msg("dropped the metrics logged after the checkpoint")
		}
	}

	// 2. Data: every rank builds the same examples; the sampler gives each its share of
	// every global batch, in an order fixed by data.seed.
	tok, err := loadTokenizer(opts.Model.Path)
	if err != nil {
		return nil, err
	}
	exs, err := buildData(opts, tok)
	if err != nil {
		return nil, err
	}
	for _, n := range exs.notes {
		log.Info().Msg(n)
	}
	lastBatch, _ := opts.lastBatch()
	sampler, err := data.NewSampler(data.SamplerConfig{NumExamples: len(exs.train), Seed: opts.Data.Seed,
		Sequential: !opts.Data.Shuffle, WorldSize: world, Rank: rank, MicroBatch: opts.Train.MicroBatchSize,
		AccumSteps: opts.Train.GradAccumSteps, LastBatch: lastBatch})
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	collator, err := data.NewCollator(tok, 0)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	loader, err := data.NewLoader(exs.train, sampler, collator)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	total := int64(opts.Train.MaxSteps)
	if total == 0 {
		total = int64(opts.Train.Epochs * sampler.StepsPerEpoch())
	}
	warmup := warmupSteps(opts.Train.WarmupRatio, int(total))
	sched, _ := scheduleOf(opts.Train.Schedule)

	// 3. Model and adapters. The adapters' initial values come from a Go PCG seeded by
	// train.seed; rank 0's are broadcast below, so every rank starts from the same ones.
	// With a shard group the frozen backbone is partitioned across it (shard/).
	m, gatherer, err := loadModel(ctx, opts, dev, env.ShardGroup)
	if err != nil {
		return nil, err
	}
	if gatherer != nil {
		p := gatherer.Plan()
		log.Info().Int("shard_group", env.ShardGroup.Size()).Int64("held_bytes", p.ShardBytes()).
			Int64("total_bytes", p.TotalBytes()).Int64("largest_unit_bytes", p.MaxUnitBytes()).
			Msg("frozen backbone sharded: each rank holds its part and gathers one block at a time")
	}
	pcg := rand.NewPCG(opts.Train.Seed, adapterStream)
	shared, err := injectAdapters(m, opts, rand.New(pcg))
	defer func() {
		m.Close()
		if gatherer != nil {
			gatherer.Close()
		}
		if shared != nil {
			shared.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	params := trainableList(m.TrainableTensors(), shared)
	trainable := optimParams(params)
	count, err := m.CountParameters()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	nTrainable, err := lrlora.CountParameters(params) // shared φ included
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	m.Train(true)

	// 4. AdamW with decoupled weight decay over the trainable list.
	opt, err := optim.NewAdamW(trainable, optim.AdamWConfig{Beta1: opts.Train.Betas[0], Beta2: opts.Train.Betas[1],
		Eps: opts.Train.Eps, WeightDecay: opts.Train.WeightDecay})
	if err != nil {
		return nil, fmt.Errorf("%w: train: %w", ErrConfig, err)
	}
	defer opt.Close()

	// 5. Where training starts: the checkpoint's exact state, or step 0 with rank 0's
	// adapters everywhere. Dropout masks come from (seed, rank, pass count).
	st := State{WorldSize: world}
	res := &Result{}
	if saved != nil {
		if st, err = restore(ctx, g, saved, params, opt, sampler, pcg); err != nil {
			return nil, err
		}
		res.ResumedFrom = saved.Dir
	} else if err := broadcastParams(ctx, g, params); err != nil {
		return nil, err
	}
	m.SetDropoutSeed(opts.Train.Seed+uint64(rank)<<32, st.DropoutPasses)
	if st.RNG, err = pcg.MarshalBinary(); err != nil {
		return nil, fmt.Errorf("train: rng state: %w", err)
	}
	man := Manifest{Options: opts, Config: env.Config, BaseModel: base, Architecture: m.Architecture().Name,
		WorldSize: world, TrainableParameters: nTrainable}
	log.Info().Str("params", count.String()).Int64("steps", total).Int("warmup", warmup).
		Int("global_batch", sampler.GlobalBatchSize()).Int("world_size", world).Int64("start_step", st.Step).
		Str("resumed_from", res.ResumedFrom).Msg("training")
	if st.Finished && (st.Reason == "early stopping" || st.Step >= total) {
		log.Info().Int64("step", st.Step).Str("reason", st.Reason).Msg("the checkpoint's run has already finished")
		res.Step, res.Reason, res.BestEvalLoss = st.Step, "already finished", st.BestEvalLoss
		return res, nil
	}
	st.Finished, st.Reason = false, ""

	// 6. The loop, one optimizer step per iteration, after an evaluation a stop cut short.
	started, startStep := time.Now(), st.Step
	savedStep := startStep // the step the newest checkpoint holds (0: none yet, or a fresh run)
	stop, evaluated := "", int64(-1)
	if st.EvalDue && len(exs.eval) > 0 {
		if stop, err = evalAndTrack(ctx, g, m, exs, collator, opts, env, &st, out); err != nil {
			return res, err
		}
		evaluated = st.Step
	}
	st.EvalDue = false
	for st.Step < total && stop == "" {
		if ctx.Err() != nil {
			return res, stopped(fmt.Errorf("train: interrupted at step %d: %w", st.Step, context.Cause(ctx)),
				rank, &st, savedStep, opts, man, params, opt, res, log)
		}
		begin := time.Now()
		sd, err := loader.Next()
		if err != nil {
			return res, fmt.Errorf("train: step %d: %w", st.Step+1, err)
		}

		// Forward and backward over this rank's micro-batches. Each summed loss is divided
		// by the step's target count over all micro-batches and ranks, so the gradients
		// add up to the gradient of the global mean loss.
		targets := targetsOf(sd, exs.classify)
		lossSum, tokens, err := accumulate(m, sd.Batches, max(targets, 1), opts.Data.Packing, opts.Data.Regression)
		if err != nil {
			return res, fmt.Errorf("train: step %d: %w", st.Step+1, err)
		}

		// One all-reduce of the gradient bucket, one of the loss and token counts. When
		// either fails (a signal, a lost peer), rank 0 saves the last completed step.
		if err := allReduceGrads(ctx, g, trainable, m.Device()); err != nil {
			return res, stopped(fmt.Errorf("train: step %d: %w", st.Step+1, err),
				rank, &st, savedStep, opts, man, params, opt, res, log)
		}
		sums := []float64{lossSum, float64(tokens)}
		if err := sumAcrossRanks(ctx, g, sums); err != nil {
			return res, stopped(fmt.Errorf("train: step %d: %w", st.Step+1, err),
				rank, &st, savedStep, opts, man, params, opt, res, log)
		}
		loss := sums[0] / float64(max(targets, 1))
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return res, fmt.Errorf("%w: training loss is %v at step %d; stopped without saving (last good checkpoint: %s)",
				ErrNonFinite, loss, st.Step+1, lastCheckpoint(res, opts))
		}

		// Clip the global gradient norm (a NaN/Inf norm stops the run), then step AdamW
		// with the scheduled learning rate: warmup, then linear, cosine or constant.
		gradNorm, err := optim.ClipGradNorm(trainable, clipNorm(opts.Train.GradClip))
		if errors.Is(err, optim.ErrNonFiniteGrad) {
			return res, fmt.Errorf("%w: gradient norm is %v at step %d; stopped without saving (last good checkpoint: %s)",
				ErrNonFinite, gradNorm, st.Step+1, lastCheckpoint(res, opts))
		}
		if err != nil {
			return res, fmt.Errorf("train: step %d: %w", st.Step+1, err)
		}
		lr := learningRate(opts.Train.LR, sched, int(st.Step), warmup, int(total))
		if targets > 0 {
			err = opt.Step(lr)
		} else {
			log.Warn().Int64("step", st.Step+1).Msg("global batch without targets: no update")
		}
		if err == nil {
			err = opt.ZeroGrad()
		}
		if err != nil {
			return res, fmt.Errorf("train: step %d: %w", st.Step+1, err)
		}
		st.Step++
		st.Epoch, st.Cursor, st.DropoutPasses = sampler.Epoch(), sampler.Cursor(), m.DropoutPasses()
		st.Tokens += int64(sums[1])
		st.LossHistory = append(st.LossHistory, StepLoss{st.Step, loss})
		if n := len(st.LossHistory); n > lossHistoryLen {
			st.LossHistory = st.LossHistory[n-lossHistoryLen:]
		}
		res.Step, res.Loss = st.Step, loss

		// Report: metrics.jsonl every step, a log line every log_every, the bar on a terminal.
		secs := time.Since(begin).Seconds()
		sm := StepMetrics{Step: st.Step, Epoch: sd.Step.Epoch, Loss: loss, LR: lr, GradNorm: gradNorm,
			Tokens: int64(sums[1]), Targets: targets, TokensPerS: sums[1] / secs, StepSeconds: secs}
		report(out, sm, total, time.Since(started), st.Step-startStep, opts.Train.LogEvery)
		if env.Hooks.Step != nil {
			env.Hooks.Step(sm)
		}

		// Evaluate every eval_every steps; stop early after `patience` evaluations
		// without a lower loss. A failed evaluation (a signal, a lost peer) saves the step
		// as a failed collective does, with the evaluation still due.
		if len(exs.eval) > 0 && opts.Train.EvalEvery > 0 && st.Step%int64(opts.Train.EvalEvery) == 0 {
			if stop, err = evalAndTrack(ctx, g, m, exs, collator, opts, env, &st, out); err != nil {
				st.EvalDue = true
				return res, stopped(err, rank, &st, savedStep, opts, man, params, opt, res, log)
			}
		}
		if st.Step >= total && stop == "" {
			stop = limitReason(opts)
		}

		// Checkpoint every checkpoint.every steps (the last one is written below).
		if rank == 0 && opts.Checkpoint.Every > 0 && st.Step%int64(opts.Checkpoint.Every) == 0 && stop == "" {
			if res.Checkpoint, err = save(opts, man, st, params, opt, log, lastCheckpoint(res, opts)); err != nil {
				return res, err
			}
			savedStep = st.Step
		}
	}

	// 7. The end: a last evaluation if the loop did not just make one, and the final
	// checkpoint, marked finished (unless no step was taken since the one resumed from).
	if stop == "" {
		stop = limitReason(opts) // resumed at or past a lowered max_steps
	}
	evalDue := (opts.Train.EvalEvery == 0 || st.Step%int64(opts.Train.EvalEvery) != 0) && evaluated != st.Step
	if len(exs.eval) > 0 && stop != "early stopping" && evalDue {
		if _, err := evalAndTrack(ctx, g, m, exs, collator, opts, env, &st, out); err != nil {
			st.EvalDue = true
			return res, stopped(err, rank, &st, savedStep, opts, man, params, opt, res, log)
		}
	}
	st.Finished, st.Reason = true, stop
	res.Step, res.Reason, res.BestEvalLoss = st.Step, stop, st.BestEvalLoss
	if n := len(st.LossHistory); n > 0 {
		res.Loss = st.LossHistory[n-1].Loss
	}
	if rank == 0 && st.Step > startStep {
		if res.Checkpoint, err = save(opts, man, st, params, opt, log, lastCheckpoint(res, opts)); err != nil {
			return res, err
		}
	}
	ev := log.Info().Int64("step", st.Step).Str("reason", stop).Float64("loss", res.Loss).
		Dur("elapsed", time.Since(started)).Str("checkpoint", res.Checkpoint)
	if peak, ok := peakRSS(); ok {
		ev = ev.Float64("peak_rss_mib", round(float64(peak)/(1<<20), 1))
	}
	ev.Msg("training finished")
	return res, nil
}
