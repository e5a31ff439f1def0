package train

import (
	"context"
	"fmt"
	"math"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
)

// EvalContext is what an evaluation hook sees. The model is in evaluation mode; the
// hook may run forward passes (grad mode is off) and collectives on Group, which every
// rank calls the hook on.
type EvalContext struct {
	Context context.Context
	Step    int64
	Model   *model.Model
	Group   collective.ProcessGroup
	Eval    []data.Example // the evaluation examples, built like the training ones
}

// EvalResult is one evaluation: the mean loss per target over the evaluation set (all
// ranks), its perplexity for language models, and the hook's metrics.
type EvalResult struct {
	Step       int64
	Loss       float64
	Perplexity float64 // exp(Loss) for language models, 0 for classification and regression
	Targets    int64
	Metrics    map[string]float64
}

// evaluate evaluates, runs the hook, reports, and updates the early-stopping state;
// it returns "early stopping" when patience has run out.
func (r *run) evaluate(ctx context.Context) (string, error) {
	st, out := &r.st, r.out
	loss, n, err := r.evalLoss(ctx)
	if err != nil {
		return "", fmt.Errorf("train: evaluate at step %d: %w", st.Step, err)
	}
	rec := map[string]any{"step": st.Step, "eval_loss": loss, "eval_targets": n}
	ev := out.log.Info().Int64("step", st.Step).Float64("eval_loss", loss)
	if !r.exs.classify {
		rec["eval_ppl"] = math.Exp(loss)
		ev = ev.Float64("eval_ppl", math.Exp(loss))
	}
	extra, err := r.evalHook(ctx)
	if err != nil {
		return "", fmt.Errorf("train: eval hook at step %d: %w", st.Step, err)
	}
	for k, v := range extra {
		rec[k] = v
		ev = ev.Float64(k, v)
	}
	if r.env.Hooks.Evaluated != nil {
		er := EvalResult{Step: st.Step, Loss: loss, Targets: n, Metrics: extra}
		if !r.exs.classify {
			er.Perplexity = math.Exp(loss)
		}
		defer r.env.Hooks.Evaluated(er)
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
	if p := r.opts.Train.Patience; p > 0 && st.EvalsWithoutImprovement >= p {
		out.log.Info().Int64("step", st.Step).Int("patience", p).Msg("early stopping: no lower eval loss")
		return "early stopping", nil
	}
	return "", nil
}

// evalHook runs Hooks.Eval, if any, with the model in evaluation mode and grad mode off.
func (r *run) evalHook(ctx context.Context) (map[string]float64, error) {
	if r.env.Hooks.Eval == nil {
		return nil, nil
	}
	r.m.Train(false)
	defer r.m.Train(true)
	var extra map[string]float64
	err := tensorkit.NoGrad(func() error {
		var err error
		extra, err = r.env.Hooks.Eval(EvalContext{Context: ctx, Step: r.st.Step, Model: r.m, Group: r.g, Eval: r.exs.eval})
		return err
	})
	return extra, err
}

// evalLoss computes the evaluation loss: rank k takes micro-batches k, k+W, k+2W, … of
// the evaluation set in order, and the loss sums and counts are summed across ranks.
// In lockstep (a sharded backbone, whose forward passes are collectives) every rank runs
// the same number of passes: a rank past the end reruns batch 0 and ignores the result.
func (r *run) evalLoss(ctx context.Context) (float64, int64, error) {
	m, g, exs, batch := r.m, r.g, r.exs.eval, r.opts.Train.MicroBatchSize
	lockstep := r.env.ShardGroup != nil && r.env.ShardGroup.Size() > 1
	m.Train(false)
	defer m.Train(true)
	sums := []float64{0, 0}
	err := tensorkit.NoGrad(func() error {
		nb := (len(exs) + batch - 1) / batch
		rounds := (nb + g.Size() - 1) / g.Size()
		for k := range rounds {
			i := g.Rank() + k*g.Size()
			idle := i >= nb
			if idle && !lockstep {
				break
			}
			if idle {
				i = 0
			}
			b, err := r.collator.Collate(exs[i*batch : min(len(exs), (i+1)*batch)])
			if err != nil {
				return fmt.Errorf("train: eval batch %d: %w", i, err)
			}
			loss, n, err := evalBatch(m, b, r.opts.Data)
			if err != nil {
				return fmt.Errorf("train: eval batch %d: %w", i, err)
			}
			if !idle {
				sums[0] += loss
				sums[1] += float64(n)
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	if err := sumAcrossRanks(ctx, g, sums); err != nil {
		return 0, 0, err
	}
	if sums[1] == 0 {
		return math.NaN(), 0, nil
	}
	return sums[0] / sums[1], int64(sums[1]), nil
}

// evalBatch returns the summed loss of one batch and its number of targets.
func evalBatch(m *model.Model, b *data.Batch, o DataOptions) (float64, int64, error) {
	bt, err := toTensors(b, o.Packing, m.Device())
	if err != nil {
		return 0, 0, err
	}
	defer bt.drop()
	logits, err := m.Forward(bt.in)
	if err != nil {
		return 0, 0, err
	}
	defer logits.Drop()
	loss, n, err := bt.lossSum(logits, o.Regression)
	if err != nil {
		return 0, 0, err
	}
	defer loss.Drop()
	v, err := tensorkit.Scalar(loss)
	return v, n, err
}
