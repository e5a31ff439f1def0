package train

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/optim"
)

// accumulate runs forward and backward over the micro-batches of one step, each loss
// sum divided by norm, and returns the undivided loss sum and the input tokens.
func accumulate(m *model.Model, batches []*data.Batch, norm int64, packed, regression bool) (float64, int64, error) {
	var lossSum float64
	var tokens int64
	for i, b := range batches {
		v, n, err := microStep(m, b, norm, packed, regression)
		if err != nil {
			return 0, 0, fmt.Errorf("micro-batch %d: %w", i, err)
		}
		lossSum += v
		tokens += n
	}
	return lossSum, tokens, nil
}

// microStep is one forward and backward pass.
func microStep(m *model.Model, b *data.Batch, norm int64, packed, regression bool) (float64, int64, error) {
	bt, err := toTensors(b, packed, m.Device())
	if err != nil {
		return 0, 0, err
	}
	defer bt.drop()
	pass, err := m.Begin(bt.in)
	if err != nil {
		return 0, 0, err
	}
	defer pass.Close()
	sum, _, err := bt.lossSum(pass.Logits(), regression)
	if err != nil {
		return 0, 0, err
	}
	defer sum.Drop()
	scaled, err := sum.DivScalar(ts.FloatScalar(float64(norm)), false)
	if err != nil {
		return 0, 0, fmt.Errorf("normalise loss: %w", err)
	}
	defer scaled.Drop()
	if err := pass.Backward(scaled); err != nil {
		return 0, 0, err
	}
	v, err := scalar(sum) // the host waits for the device here (once per micro-batch)
	if err != nil {
		return 0, 0, fmt.Errorf("read loss: %w", err)
	}
	return v, bt.tokens, nil
}

// restore loads a checkpoint into the run: adapter tensors, optimizer state, data
// position and RNG state. Every rank loads the same checkpoint; a sum of the steps
// checks that they did.
func restore(ctx context.Context, g collective.ProcessGroup, s *Saved, params []lrlora.NamedTensor,
	opt *optim.AdamW, sampler *data.Sampler, pcg *rand.PCG) (State, error) {
	st := s.State
	if err := s.loadParams(params); err != nil {
		return st, err
	}
	if err := s.loadOptimizer(opt); err != nil {
		return st, err
	}
	if err := sampler.Resume(st.Cursor); err != nil {
		return st, fmt.Errorf("train: resume %s: %w (data.train, data.seed or data.shuffle changed?)", s.Dir, err)
	}
	if len(st.RNG) > 0 {
		if err := pcg.UnmarshalBinary(st.RNG); err != nil {
			return st, fmt.Errorf("%w: %s: rng: %v", ErrCheckpoint, s.Dir, err)
		}
	}
	steps := []float64{float64(st.Step)}
	if err := sumAcrossRanks(ctx, g, steps); err != nil {
		return st, err
	}
	if steps[0] != float64(st.Step)*float64(g.Size()) {
		return st, fmt.Errorf("train: ranks resumed from different checkpoints (rank %d: %s, step %d)", g.Rank(), s.Dir, st.Step)
	}
	st.WorldSize = g.Size()
	return st, nil
}

// report writes the step to metrics.jsonl, logs it every logEvery steps and moves the
// progress bar.
func report(out *runLog, sm StepMetrics, total int64, elapsed time.Duration, done int64, logEvery int) {
	out.metric(map[string]any{"step": sm.Step, "epoch": sm.Epoch, "loss": sm.Loss, "lr": sm.LR,
		"grad_norm": sm.GradNorm, "tokens": sm.Tokens, "targets": sm.Targets,
		"tokens_per_s": round(sm.TokensPerS, 1), "step_s": round(sm.StepSeconds, 4)})
	eta := time.Duration(float64(elapsed) / float64(max(done, 1)) * float64(total-sm.Step))
	if logEvery > 0 && (sm.Step%int64(logEvery) == 0 || sm.Step == total) {
		out.stepLogger().Info().Int64("step", sm.Step).Int64("of", total).Int("epoch", sm.Epoch).
			Float64("loss", sm.Loss).Float64("lr", sm.LR).Float64("grad_norm", sm.GradNorm).
			Float64("tokens_per_s", round(sm.TokensPerS, 1)).Dur("eta", eta.Round(time.Second)).Msg("step")
	}
	if out.console != nil {
		out.console.set(progressBar(sm.Step, total, sm.Loss, sm.TokensPerS, eta))
	}
}

// evalAndTrack evaluates, runs the hook, reports, and updates the early-stopping state;
// it returns "early stopping" when patience has run out.
func evalAndTrack(ctx context.Context, g collective.ProcessGroup, m *model.Model, exs *examples, collator *data.Collator,
	opts Options, env Env, st *State, out *runLog) (string, error) {
	lockstep := env.ShardGroup != nil && env.ShardGroup.Size() > 1
	loss, n, err := evaluate(ctx, m, g, exs.eval, collator, opts.Train.MicroBatchSize, opts.Data.Packing, opts.Data.Regression, lockstep)
	if err != nil {
		return "", fmt.Errorf("train: evaluate at step %d: %w", st.Step, err)
	}
	rec := map[string]any{"step": st.Step, "eval_loss": loss, "eval_targets": n}
	ev := out.log.Info().Int64("step", st.Step).Float64("eval_loss", loss)
	if !exs.classify {
		rec["eval_ppl"] = math.Exp(loss)
		ev = ev.Float64("eval_ppl", math.Exp(loss))
	}
	if env.Hooks.Eval != nil {
		m.Train(false)
		var extra map[string]float64
		err := withoutGrad(func() error {
			var err error
			extra, err = env.Hooks.Eval(EvalContext{Context: ctx, Step: st.Step, Model: m, Group: g, Eval: exs.eval})
			return err
		})
		m.Train(true)
		if err != nil {
			return "", fmt.Errorf("train: eval hook at step %d: %w", st.Step, err)
		}
		for k, v := range extra {
			rec[k] = v
			ev = ev.Float64(k, v)
		}
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		ev.Msg("evaluation (non-finite loss: not counted for early stopping)")
		out.metric(rec)
		return "", nil
	}
	if st.BestEvalLoss == nil || loss < *st.BestEvalLoss {
		st.BestEvalLoss, st.BestStep, st.EvalsWithoutImprovement = &loss, st.Step, 0
	} else {
		st.EvalsWithoutImprovement++
	}
	ev.Float64("best_eval_loss", *st.BestEvalLoss).Int64("best_step", st.BestStep).Msg("evaluation")
	out.metric(rec)
	if p := opts.Train.Patience; p > 0 && st.EvalsWithoutImprovement >= p {
		out.log.Info().Int64("step", st.Step).Int("patience", p).Msg("early stopping: no lower eval loss")
		return "early stopping", nil
	}
	return "", nil
}

// save writes a checkpoint (rank 0) and logs it. last is the previous checkpoint.
func save(opts Options, man Manifest, st State, params []lrlora.NamedTensor, opt *optim.AdamW, log *zerolog.Logger, last string) (string, error) {
	begin := time.Now()
	dir, err := saveCheckpoint(opts.Checkpoint.Dir, opts.Checkpoint.KeepLast, man, st, params, opt)
	if errors.Is(err, ErrNonFinite) {
		return "", fmt.Errorf("%w after step %d; stopped without saving (last good checkpoint: %s)", err, st.Step, last)
	}
	if err != nil {
		return dir, fmt.Errorf("%w (at step %d)", err, st.Step)
	}
	log.Info().Int64("step", st.Step).Str("dir", dir).Dur("took", time.Since(begin)).Msg("checkpoint saved")
	return dir, nil
}

// stopped ends a run that a signal (a cancelled context) or a failed collective
// stopped between or inside optimizer steps: rank 0 first saves the state of the last
// completed step, unless the newest checkpoint (at savedStep) holds it already. That
// state is the whole run's whatever the other ranks are doing: a rank that completed
// step N has every rank's gradients of step N (adapters and optimizer are replicated),
// and a step that failed part-way changed nothing but gradients. It returns cause,
// saying where the state went.
func stopped(cause error, rank int, st *State, savedStep int64, opts Options, man Manifest,
	params []lrlora.NamedTensor, opt *optim.AdamW, res *Result, log *zerolog.Logger) error {
	if rank != 0 || st.Step <= savedStep {
		return cause
	}
	dir, err := save(opts, man, *st, params, opt, log, lastCheckpoint(res, opts))
	if err != nil {
		return fmt.Errorf("%w; saving step %d failed too: %w", cause, st.Step, err)
	}
	res.Checkpoint = dir
	return fmt.Errorf("%w (step %d saved in %s)", cause, st.Step, dir)
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

// lastCheckpoint names the checkpoint a failed run leaves for resuming.
func lastCheckpoint(res *Result, opts Options) string {
	if res.Checkpoint != "" {
		return res.Checkpoint
	}
	if res.ResumedFrom != "" {
		return res.ResumedFrom
	}
	return "none under " + opts.Checkpoint.Dir
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
