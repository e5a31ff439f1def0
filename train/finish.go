package train

import (
	"context"
	"time"

	"github.com/lrtrain/lrtrain/phiop"
)

// The end of a run: a resumed run that had already finished, and the last evaluation,
// checkpoint and "training finished" line of one that has just finished.

// finishedAlready reports a resume of a run that has ended (early stopping, or its last
// step reached), which trains no further.
func (r *run) finishedAlready() bool {
	st := &r.st
	if st.Finished && (st.Reason == "early stopping" || st.Step >= r.total) {
		r.log.Info().Int64("step", st.Step).Str("reason", st.Reason).Msg("the checkpoint's run has already finished")
		r.res.Step, r.res.Reason, r.res.BestEvalLoss = st.Step, "already finished", st.BestEvalLoss
		return true
	}
	st.Finished, st.Reason = false, ""
	return false
}

// finish ends the run: a last evaluation if none was just made, and the final
// checkpoint, marked finished (unless no step was taken since the one resumed from).
func (r *run) finish(ctx context.Context, stop string) (*Result, error) {
	st, res := &r.st, r.res
	if stop == "" {
		stop = limitReason(r.opts) // resumed at or past a lowered max_steps
	}
	every := int64(r.opts.Train.EvalEvery)
	evalDue := (every == 0 || st.Step%every != 0) && r.evaluated != st.Step
	if len(r.exs.eval) > 0 && stop != "early stopping" && evalDue {
		if _, err := r.evaluate(ctx); err != nil {
			st.EvalDue = true
			return res, r.stopped(err)
		}
	}
	st.Finished, st.Reason = true, stop
	res.Step, res.Reason, res.BestEvalLoss = st.Step, stop, st.BestEvalLoss
	if n := len(st.LossHistory); n > 0 {
		res.Loss = st.LossHistory[n-1].Loss
	}
	if r.rank == 0 && st.Step > r.startStep {
		var err error
		if res.Checkpoint, err = r.save(); err != nil {
			return res, err
		}
	}
	ev := r.log.Info().Int64("step", st.Step).Str("reason", stop).Float64("loss", res.Loss).
		Dur("elapsed", time.Since(r.started)).Str("checkpoint", res.Checkpoint)
	if peak, ok := peakRSS(); ok {
		ev = ev.Float64("peak_rss_mib", round(float64(peak)/(1<<20), 1))
	}
	if cs := phiop.CachingAllocatorStats(); cs.Installed {
		// What live CPU tensors held at most, and what the allocator had mapped at
		// most (theirs and its cache's), over the whole run: the CPU's "max memory
		// allocated/reserved".
		r.peaks.add(cs)
		res.PeakTensorMiB = mib(r.peaks.tensor)
		ev = ev.Float64("peak_cpu_tensor_mib", res.PeakTensorMiB).Float64("peak_cpu_mapped_mib", mib(r.peaks.mapped))
	}
	if r.gatherer != nil {
		gs := r.gatherer.Stats()
		ev = ev.Int("shard_gathers", gs.Gathers).Int("shard_reused", gs.Reused).Float64("shard_gather_s", round(gs.GatherTime.Seconds(), 3)).
			Float64("shard_wait_s", round(gs.WaitTime.Seconds(), 3)).Int("shard_prefetch", r.gatherer.Prefetch()).
			Int("shard_row_reads", gs.RowReads).Float64("shard_row_mib", round(float64(gs.RowBytes)/(1<<20), 1)).
			Float64("shard_row_s", round(gs.RowTime.Seconds(), 3))
	}
	if r.split.steps > 0 {
		ev = ev.Int("split_delta_steps", r.split.steps).Float64("split_delta_reduce_s", round(r.split.reduce.Seconds(), 3))
	}
	ev.Msg("training finished")
	return res, nil
}
