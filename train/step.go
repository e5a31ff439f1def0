package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/optim"
)

// accumulate runs forward and backward over the micro-batches of one step, each loss
// sum divided by norm, and returns the undivided loss sum and the input tokens. With
// more than one micro-batch and model.delta_per_step the adapters form ΔW once for the
// step (model.HoldDeltas) and back-propagate the micro-batches' summed gradient of it
// after the last one; with model.split_delta the ranks split that work by layer
// (splitdelta.go), whatever the number of micro-batches. The loss sums are added up
// on the device in float64 (each float32 sum converts exactly, and 0 + x = x: the
// same float64 additions, in the same order, as on the host) and the total is read
// once, after the last backward: the host never waits for the device between
// micro-batches.
func (r *run) accumulate(ctx context.Context, batches []*data.Batch, norm int64) (float64, int64, error) {
	total, err := ts.Zeros([]int64{1}, gotch.Double, r.m.Device()) // gotch's Zeros takes no 0-dim shape
	if err != nil {
		return 0, 0, fmt.Errorf("loss accumulator: %w", err)
	}
	defer total.Drop()
	share, why := r.planShare()
	if why != "" && !r.shareNoted {
		r.shareNoted = true
		r.log.Warn().Str("reason", why).Msg("model.split_delta: each rank forms every layer's ΔW")
	}
	if share != nil {
		// ΔW split across the ranks: each forms its layers' share and receives the rest.
		defer r.m.ReleaseDeltas()
		defer share.release()
		if f := r.env.seams.splitExchange; f != nil {
			f(r.st.Step + 1)
		}
		if err := share.hold(ctx, r.m.Device(), r.rank); err != nil {
			return 0, 0, err
		}
		if !r.shareNoted {
			r.shareNoted = true
			r.log.Info().Int("adapters", len(share.ads)).Int("owned", share.owned(r.rank)).Int("ranks", r.g.Size()).
				Str("exchange", share.exchange()).Msg("ΔW formed once per optimizer step, split across ranks (model.split_delta)")
		}
	} else if len(batches) > 1 && r.opts.Model.DeltaPerStep {
		// ΔW once for the step: φ forward here, its backward after the last micro-batch.
		n, err := r.m.HoldDeltas()
		if err != nil {
			return 0, 0, err
		}
		defer r.m.ReleaseDeltas() // a step that failed part-way; a no-op after the backward
		if !r.heldNoted {
			r.heldNoted = true
			r.log.Info().Int("adapters", n).Int("of", len(r.m.Adapters())).Int("micro_batches", len(batches)).
				Msg("ΔW formed once per optimizer step (model.delta_per_step)")
		}
	}
	var tokens int64
	var beforeBackward func() error
	if share != nil {
		// The held weights' gradient buffer, from the first backward on. (Moving the
		// first backward's gradients into it afterwards instead lowered the peak of
		// the tensors by 26 MiB but raised the peak RSS by 72 MiB: BENCHMARKS.md.)
		beforeBackward = func() error { return share.gradsInPlace(r.m.Device()) }
	}
	for i, b := range batches {
		n, fused, err := microStep(r.m, b, norm, r.opts.Data, total, beforeBackward)
		if err != nil {
			return 0, 0, fmt.Errorf("micro-batch %d: %w", i, err)
		}
		if fused && !r.lossNoted {
			r.lossNoted = true
			_, chunk := r.m.FusedLoss()
			r.log.Info().Int("loss_chunk", chunk).
				Msg("causal LM loss computed in the head without the logits (model.fused_loss; loss_chunk 0: chosen per pass)")
		}
		tokens += n
	}
	if share != nil {
		if err := share.backward(ctx, r.m.Device(), r.rank); err != nil {
			return 0, 0, err
		}
		if err := zeroMissingGrads(r.trainable); err != nil {
			return 0, 0, err
		}
		r.split.steps++
		r.split.reduce += share.reduced
	} else if err := r.m.BackwardHeldDeltas(); err != nil { // nothing held: nothing to do
		return 0, 0, err
	}
	v, err := tensorkit.Scalar(total) // the one read of the step's loss
	if err != nil {
		return 0, 0, fmt.Errorf("read loss: %w", err)
	}
	return v, tokens, nil
}

// microStep is one forward and backward pass; it adds the batch's summed loss to
// total (a one-element float64 tensor on the model's device) and returns the batch's
// input tokens, and whether the pass computed its loss in the head (model.fused_loss).
// before, if not nil, runs between the forward and the backward.
func microStep(m *model.Model, b *data.Batch, norm int64, o DataOptions, total *ts.Tensor, before func() error) (int64, bool, error) {
	bt, err := toTensors(b, o.Packing, m.Device())
	if err != nil {
		return 0, false, err
	}
	defer bt.drop()
	in := bt.in
	in.Labels = bt.labels // a causal LM's loss computed in the head (model.fused_loss)
	pass, err := m.Begin(in)
	if err != nil {
		return 0, false, err
	}
	defer pass.Close()
	var sum *ts.Tensor
	l := pass.LossSum()
	fused := l != nil
	if fused {
		if sum, err = l.ShallowClone(); err != nil {
			return 0, false, fmt.Errorf("loss: %w", err)
		}
	} else if sum, _, err = bt.lossSum(pass.Logits(), o.Regression); err != nil {
		return 0, false, err
	}
	defer sum.Drop()
	scaled, err := sum.DivScalar(ts.FloatScalar(float64(norm)), false)
	if err != nil {
		return 0, false, fmt.Errorf("normalise loss: %w", err)
	}
	defer scaled.Drop()
	if before != nil {
		if err := before(); err != nil {
			return 0, false, err
		}
	}
	if err := pass.Backward(scaled); err != nil {
		return 0, false, err
	}
	if err := addInto(total, sum); err != nil {
		return 0, false, fmt.Errorf("accumulate loss: %w", err)
	}
	return bt.tokens, fused, nil
}

// addInto sets total ← total + float64(v) in place on total's device, outside autograd.
func addInto(total, v *ts.Tensor) error {
	d, err := v.Detach(false)
	if err != nil {
		return err
	}
	defer d.Drop()
	v64, err := d.Totype(gotch.Double, false)
	if err != nil {
		return err
	}
	defer v64.Drop()
	out, err := total.AddOut(total, v64, false)
	if err != nil {
		return err
	}
	return out.Drop()
}

// update clips the global gradient norm (a NaN or infinite norm stops the run with
// ErrNonFinite) and steps AdamW at the scheduled learning rate: warmup, then linear,
// cosine or constant. A global batch without targets changes nothing.
func (r *run) update(targets int64) (gradNorm, lr float64, err error) {
	gradNorm, err = optim.ClipGradNorm(r.trainable, clipNorm(r.opts.Train.GradClip))
	if errors.Is(err, optim.ErrNonFiniteGrad) {
		return 0, 0, fmt.Errorf("%w: gradient norm is %v at step %d; stopped without saving (last good checkpoint: %s)",
			ErrNonFinite, gradNorm, r.st.Step+1, r.lastCheckpoint())
	}
	if err != nil {
		return 0, 0, r.stepError(err)
	}
	lr = learningRate(r.opts.Train.LR, r.sched, int(r.st.Step), r.warmup, int(r.total))
	if targets > 0 {
		err = r.opt.Step(lr)
	} else {
		r.log.Warn().Int64("step", r.st.Step+1).Msg("global batch without targets: no update")
	}
	if err == nil {
		err = r.opt.ZeroGrad()
	}
	if err != nil {
		return 0, 0, r.stepError(err)
	}
	return gradNorm, lr, nil
}

// advance records a completed step: the step count, the data position, the dropout
// pass count, the tokens and the loss.
func (r *run) advance(loss float64, tokens int64) {
	st := &r.st
	st.Step++
	st.Epoch, st.Cursor, st.DropoutPasses = r.sampler.Epoch(), r.sampler.Cursor(), r.m.DropoutPasses()
	st.Tokens += tokens
	st.LossHistory = append(st.LossHistory, StepLoss{st.Step, loss})
	if n := len(st.LossHistory); n > lossHistoryLen {
		st.LossHistory = st.LossHistory[n-lossHistoryLen:]
	}
	r.res.Step, r.res.Loss = st.Step, loss
}

// report writes the step to metrics.jsonl, logs it every log_every steps, moves the
// progress bar and calls the step hook.
func (r *run) report(sm StepMetrics) {
	out, total := r.out, r.total
	rec := map[string]any{"step": sm.Step, "epoch": sm.Epoch, "loss": sm.Loss, "lr": sm.LR,
		"grad_norm": sm.GradNorm, "tokens": sm.Tokens, "targets": sm.Targets,
		"tokens_per_s": round(sm.TokensPerS, 1), "step_s": round(sm.StepSeconds, 4)}
	if sm.PeakTensorMiB > 0 {
		rec["peak_cpu_tensor_mib"] = sm.PeakTensorMiB
	}
	out.metric(rec)
	done := r.st.Step - r.startStep
	eta := time.Duration(float64(time.Since(r.started)) / float64(max(done, 1)) * float64(total-sm.Step))
	if every := r.opts.Train.LogEvery; every > 0 && (sm.Step%int64(every) == 0 || sm.Step == total) {
		out.stepLogger().Info().Int64("step", sm.Step).Int64("of", total).Int("epoch", sm.Epoch).
			Float64("loss", sm.Loss).Float64("lr", sm.LR).Float64("grad_norm", sm.GradNorm).
			Float64("tokens_per_s", round(sm.TokensPerS, 1)).Dur("eta", eta.Round(time.Second)).Msg("step")
	}
	if out.console != nil {
		out.console.set(progressBar(sm.Step, total, sm.Loss, sm.TokensPerS, eta))
	}
	if r.env.Hooks.Step != nil {
		r.env.Hooks.Step(sm)
	}
}

// stepError names the step that failed.
func (r *run) stepError(err error) error {
	return fmt.Errorf("train: step %d: %w", r.st.Step+1, err)
}

// limitReason says which limit ended a run that reached its last step.
func limitReason(o Options) string {
	if o.Train.MaxSteps == 0 {
		return "epochs"
	}
	return "max_steps"
}

// clipNorm is the clipping threshold; without clipping the norm is still computed.
func clipNorm(c float64) float64 {
	if c == 0 {
		return math.Inf(1)
	}
	return c
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
