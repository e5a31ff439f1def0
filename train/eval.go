package train

import (
	"context"
	"fmt"
	"math"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/dist/collective"
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
	Step    int64
	Loss    float64
	Targets int64
	Metrics map[string]float64
}

// evaluate computes the evaluation loss: rank k takes micro-batches k, k+W, k+2W, … of
// the evaluation set in order, and the loss sums and counts are summed across ranks.
// In lockstep (a sharded backbone, whose forward passes are collectives) every rank runs
// the same number of passes: a rank past the end reruns batch 0 and ignores the result.
func evaluate(ctx context.Context, m *model.Model, g collective.ProcessGroup, exs []data.Example,
	collator *data.Collator, batch int, packed, regression, lockstep bool) (float64, int64, error) {
	m.Train(false)
	defer m.Train(true)
	sums := []float64{0, 0}
	err := withoutGrad(func() error {
		nb := (len(exs) + batch - 1) / batch
		rounds := (nb + g.Size() - 1) / g.Size()
		for r := range rounds {
			i := g.Rank() + r*g.Size()
			idle := i >= nb
			if idle && !lockstep {
				break
			}
			if idle {
				i = 0
			}
			b, err := collator.Collate(exs[i*batch : min(len(exs), (i+1)*batch)])
			if err != nil {
				return fmt.Errorf("train: eval batch %d: %w", i, err)
			}
			loss, n, err := evalBatch(m, b, packed, regression)
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
func evalBatch(m *model.Model, b *data.Batch, packed, regression bool) (float64, int64, error) {
	bt, err := toTensors(b, packed, m.Device())
	if err != nil {
		return 0, 0, err
	}
	defer bt.drop()
	logits, err := m.Forward(bt.in)
	if err != nil {
		return 0, 0, err
	}
	defer logits.Drop()
	loss, n, err := bt.lossSum(logits, regression)
	if err != nil {
		return 0, 0, err
	}
	defer loss.Drop()
	v, err := scalar(loss)
	return v, n, err
}
