package train

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/lrtrain/lrtrain/phiop"
)

// Run trains the adapters that opts describes, from scratch or from a checkpoint (see
// CheckpointOptions.Resume), and returns how the run ended. Every rank of env.Group
// calls it with the same options. It blocks the calling goroutine, which it locks to
// its OS thread (libtorch's grad mode is per thread).
func Run(ctx context.Context, opts Options, env Env) (_ *Result, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	phiop.InitThreads()
	cacheLimit, err := phiop.InstallCachingAllocatorFromEnv() // bounded CPU block cache
	if err != nil {
		return nil, err
	}
	phiop.ResetAllocPeaks() // the peaks "training finished" reports are this run's (process-wide)

	r := &run{env: env, evaluated: -1, cacheLimit: cacheLimit}
	defer func() { r.close(err != nil) }()
	// 0. The resolved options, the group, the log (rank 0 locks output.dir), the device.
	if err := r.open(opts); err != nil {
		return nil, err
	}
	// 1. The checkpoint to resume from, checked against the options.
	if err := r.pickCheckpoint(); err != nil {
		return nil, err
	}
	// 2. Data, the same examples on every rank; the sampler; the run's length.
	if err := r.loadData(); err != nil {
		return nil, err
	}
	// 3. Model and adapters, then 4. AdamW over the trainable list.
	if err := r.buildModel(ctx); err != nil {
		return nil, err
	}
	if err := r.initAdapters(); err != nil { // Env.InitAdapters, for a fresh run
		return nil, err
	}
	if err := r.newOptimizer(); err != nil {
		return nil, err
	}
	// 5. Where training starts: the checkpoint's state, or rank 0's adapters everywhere.
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	if r.finishedAlready() {
		return r.res, nil
	}
	// 6. The loop, then 7. the end: a last evaluation and the final checkpoint.
	stop, err := r.train(ctx)
	if err != nil {
		return r.res, err
	}
	return r.finish(ctx, stop)
}

// train takes optimizer steps, after an evaluation a stop cut short, until the last
// step or early stopping, and says which ended it. A signal, a failed collective or a
// failed evaluation ends it with an error, after rank 0 saved the last completed step.
func (r *run) train(ctx context.Context) (stop string, err error) {
	r.started, r.startStep, r.savedStep = time.Now(), r.st.Step, r.st.Step
	if r.st.EvalDue && len(r.exs.eval) > 0 {
		if stop, err = r.evaluate(ctx); err != nil {
			return "", err
		}
		r.evaluated = r.st.Step
	}
	r.st.EvalDue = false
	for r.st.Step < r.total && stop == "" {
		if ctx.Err() != nil {
			return "", r.stopped(fmt.Errorf("train: interrupted at step %d: %w", r.st.Step, context.Cause(ctx)))
		}
		if err := r.step(ctx); err != nil {
			return "", err
		}
		// Evaluate every eval_every steps; stop early after `patience` evaluations
		// without a lower loss. A failed evaluation saves the step with it still due.
		if every := int64(r.opts.Train.EvalEvery); len(r.exs.eval) > 0 && every > 0 && r.st.Step%every == 0 {
			if stop, err = r.evaluate(ctx); err != nil {
				r.st.EvalDue = true
				return "", r.stopped(err)
			}
		}
		if r.st.Step >= r.total && stop == "" {
			stop = limitReason(r.opts)
		}
		// Checkpoint every checkpoint.every steps (finish writes the last one).
		if every := int64(r.opts.Checkpoint.Every); r.rank == 0 && every > 0 && r.st.Step%every == 0 && stop == "" {
			if r.res.Checkpoint, err = r.save(); err != nil {
				return "", err
			}
			r.savedStep = r.st.Step
		}
	}
	return stop, nil
}

// step takes one optimizer step.
func (r *run) step(ctx context.Context) error {
	if f := r.env.seams.stepStart; f != nil {
		f(r.st.Step + 1)
	}
	begin := time.Now()
	r.peaks.add(phiop.CachingAllocatorStats()) // what came before the step, then the step's own
	phiop.ResetAllocPeaks()
	sd, err := r.loader.Next()
	if err != nil {
		return r.stepError(err)
	}
	// Forward and backward over this rank's micro-batches, each summed loss divided by
	// the step's target count over all micro-batches and ranks: the gradients add up to
	// the gradient of the global mean loss.
	targets := targetsOf(sd, r.exs.classify)
	lossSum, tokens, err := r.accumulate(ctx, sd.Batches, max(targets, 1))
	if err != nil {
		if groupFailed(err) {
			// A lost peer or a signal inside the step's own collectives (model.split_delta's
			// exchange, a sharded backbone's gathers): as below, rank 0 saves the last
			// completed step.
			return r.stopped(r.stepError(err))
		}
		return r.stepError(err)
	}
	// One all-reduce of the gradient bucket, one of the loss and token counts; when
	// either fails (a signal, a lost peer), rank 0 saves the last completed step.
	sums := []float64{lossSum, float64(tokens)}
	if err := r.allReduce(ctx, sums); err != nil {
		return r.stopped(r.stepError(err))
	}
	loss := sums[0] / float64(max(targets, 1))
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return fmt.Errorf("%w: training loss is %v at step %d; stopped without saving (last good checkpoint: %s)",
			ErrNonFinite, loss, r.st.Step+1, r.lastCheckpoint())
	}
	// Clip the global gradient norm (a NaN/Inf norm stops the run), step AdamW at the
	// scheduled rate, record the step and report it.
	gradNorm, lr, err := r.update(targets)
	if err != nil {
		return err
	}
	r.advance(loss, int64(sums[1]))
	secs := time.Since(begin).Seconds()
	sm := StepMetrics{Step: r.st.Step, Epoch: sd.Step.Epoch, Loss: loss, LR: lr, GradNorm: gradNorm,
		Tokens: int64(sums[1]), Targets: targets, TokensPerS: sums[1] / secs, StepSeconds: secs}
	if cs := phiop.CachingAllocatorStats(); cs.Installed {
		sm.PeakTensorMiB = mib(cs.PeakTensorBytes)
	}
	r.report(sm)
	return nil
}
