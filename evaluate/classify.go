package evaluate

import (
	"fmt"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
)

// ClassPredictions are a classifier's outputs next to the gold labels, in example order.
type ClassPredictions struct {
	// Regression is set for one-score models (num_labels 1): Scores and Targets hold
	// the predicted and gold scores; otherwise Pred and Gold hold class indices.
	Regression      bool
	Pred, Gold      []int
	Scores, Targets []float64
	NumLabels       int
}

// Classify runs a sequence classifier on classification examples (data.Builder's
// Classification) in eval mode without autograd: the predicted class is the argmax of
// the logits (ties: the lowest index), or the single score for regression models.
func Classify(m *model.Model, p *Pipeline, examples []data.Example, o Options) (*ClassPredictions, error) {
	if m.Architecture().Task != model.SequenceClassification {
		return nil, fmt.Errorf("%w: classification needs a sequence classifier, %s is %v", ErrTask, m.Architecture().Name, m.Architecture().Task)
	}
	if len(examples) == 0 {
		return nil, fmt.Errorf("%w: no examples", ErrEmpty)
	}
	for i, ex := range examples {
		if !ex.IsClassification() {
			return nil, fmt.Errorf("%w: example %d is not a classification example", ErrTask, i)
		}
	}
	wasTraining := m.Training()
	m.Train(false)
	defer m.Train(wasTraining)
	numLabels := m.Config().NumLabels
	res := &ClassPredictions{Regression: numLabels == 1, NumLabels: numLabels}
	bs := o.batchSize()
	for start := 0; start < len(examples); start += bs {
		part := examples[start:min(start+bs, len(examples))]
		rows, err := classifyBatch(m, part, p.Collator)
		if err != nil {
			return nil, fmt.Errorf("evaluate: examples %d–%d: %w", start, start+len(part)-1, err)
		}
		for i, ex := range part {
			row := rows[i*numLabels : (i+1)*numLabels]
			if res.Regression {
				res.Scores = append(res.Scores, row[0])
				res.Targets = append(res.Targets, ex.Score)
				continue
			}
			best := 0
			for c := range row {
				if row[c] > row[best] {
					best = c
				}
			}
			res.Pred = append(res.Pred, best)
			res.Gold = append(res.Gold, ex.ClassLabel)
		}
	}
	return res, nil
}

// classifyBatch returns the B×num_labels logits of one batch, row-major.
func classifyBatch(m *model.Model, examples []data.Example, col *data.Collator) ([]float64, error) {
	b, err := col.Collate(examples)
	if err != nil {
		return nil, err
	}
	in, err := batchInputs(b, false)
	if err != nil {
		return nil, err
	}
	defer in.close()
	var rows []float64
	err = tensorkit.NoGrad(func() error {
		logits, err := m.Forward(in.Inputs)
		if err != nil {
			return err
		}
		defer logits.Drop()
		rows, err = float64s(logits)
		return err
	})
	return rows, err
}
