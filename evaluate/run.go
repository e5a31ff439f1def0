package evaluate

import (
	"fmt"
	"strings"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/metrics"
	"github.com/lrtrain/lrtrain/model"
)

// Task is what Run measures.
type Task string

// The tasks of `lrtrain eval --task`.
const (
	// TaskLM is perplexity: mean next-token loss over the labelled tokens.
	TaskLM Task = "lm"
	// TaskClassification is accuracy, F1 and MCC of a sequence classifier (Pearson and
	// Spearman for a regression model).
	TaskClassification Task = "classification"
	// TaskMultipleChoice picks each question's option by log-likelihood.
	TaskMultipleChoice Task = "multiple-choice"
	// TaskGenerate generates greedily and extracts the answer from the text.
	TaskGenerate Task = "generate"
)

// Tasks lists the task names.
func Tasks() []string {
	return []string{string(TaskLM), string(TaskClassification), string(TaskMultipleChoice), string(TaskGenerate)}
}

// ParseTask checks a task name.
func ParseTask(s string) (Task, error) {
	for _, t := range Tasks() {
		if strings.EqualFold(strings.TrimSpace(s), t) {
			return Task(t), nil
		}
	}
	return "", fmt.Errorf("%w: task %q (want %s)", ErrConfig, s, strings.Join(Tasks(), ", "))
}

// samplesKept is how many generations a report keeps for reading.
const samplesKept = 10

// Run evaluates m on records for task and reports the metrics (package metrics
// computes them from the predictions):
//
//   - lm: loss (mean nats per target token), perplexity, tokens;
//   - classification: accuracy, f1 (binary F1 of class 1 for two classes, macro F1
//     otherwise), f1_macro, mcc; for regression models pearson, spearman, mse;
//   - multiple-choice: accuracy (summed log-likelihood), accuracy_norm (per token);
//   - generate: answer_accuracy over records with an answer (commonsense-170k tokens
//     extracted from the text), answered (fraction with a recognisable answer), and a
//     few samples.
//
// dec is needed for generate only.
func Run(m *model.Model, p *Pipeline, records []data.Record, task Task, dec Decoder, o Options) (*Report, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrEmpty)
	}
	r := &Report{Task: task}
	switch task {
	case TaskLM:
		return r, runLM(r, m, p, records, o)
	case TaskClassification:
		return r, runClassification(r, m, p, records, o)
	case TaskMultipleChoice:
		return r, runChoice(r, m, p, records, o)
	case TaskGenerate:
		if dec == nil {
			return nil, fmt.Errorf("%w: generation needs a decoder", ErrConfig)
		}
		return r, runGenerate(r, m, p, dec, records, o)
	}
	return nil, fmt.Errorf("%w: task %q", ErrConfig, task)
}

func runLM(r *Report, m *model.Model, p *Pipeline, records []data.Record, o Options) error {
	examples, _, err := p.Builder.Build(records)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	res, err := LanguageModel(m, p, examples, o)
	if err != nil {
		return err
	}
	ppl, err := metrics.Perplexity(res.SumLoss, res.Tokens)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	r.Examples = res.Examples
	r.add("loss", res.Loss)
	r.add("perplexity", ppl)
	r.add("tokens", float64(res.Tokens))
	return nil
}

func runClassification(r *Report, m *model.Model, p *Pipeline, records []data.Record, o Options) error {
	examples, _, err := p.Builder.Build(records)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	pr, err := Classify(m, p, examples, o)
	if err != nil {
		return err
	}
	r.Examples = len(examples)
	if pr.Regression {
		pearson, err := metrics.Pearson(pr.Scores, pr.Targets)
		if err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		spearman, err := metrics.Spearman(pr.Scores, pr.Targets)
		if err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		mse := 0.0
		for i := range pr.Scores {
			d := pr.Scores[i] - pr.Targets[i]
			mse += d * d
		}
		r.add("pearson", pearson)
		r.add("spearman", spearman)
		r.add("mse", mse/float64(len(pr.Scores)))
		return nil
	}
	acc, err := metrics.Accuracy(pr.Gold, pr.Pred)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	macro, err := metrics.F1Macro(pr.Gold, pr.Pred)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	f1 := macro
	if pr.NumLabels == 2 {
		if f1, err = metrics.F1Binary(pr.Gold, pr.Pred, 1); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
	}
	mcc, err := metrics.MCC(pr.Gold, pr.Pred)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	r.add("accuracy", acc)
	r.add("f1", f1)
	r.add("f1_macro", macro)
	r.add("mcc", mcc)
	return nil
}

func runChoice(r *Report, m *model.Model, p *Pipeline, records []data.Record, o Options) error {
	items, err := ChoicesFromRecords(records)
	if err != nil {
		return err
	}
	sc, err := ScoreChoices(m, p, items, o)
	if err != nil {
		return err
	}
	acc, err := metrics.MultipleChoiceAccuracy(sc.Questions(), sc.Gold, metrics.SumLogLik)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	accNorm, err := metrics.MultipleChoiceAccuracy(sc.Questions(), sc.Gold, metrics.MeanLogLik)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	r.Examples = len(items)
	r.add("accuracy", acc)
	r.add("accuracy_norm", accNorm)
	return nil
}

func runGenerate(r *Report, m *model.Model, p *Pipeline, dec Decoder, records []data.Record, o Options) error {
	gens, err := Generate(m, p, dec, records, o)
	if err != nil {
		return err
	}
	r.Examples = len(gens)
	var gold, outputs []string
	answered := 0
	for i, g := range gens {
		s := Sample{Prompt: g.Record.Instruction, Output: g.Output, Gold: g.Record.Answer}
		if set, ok := answerChoices(g.Record); ok {
			gold, outputs = append(gold, g.Record.Answer), append(outputs, g.Output)
			if got, ok := metrics.ExtractAnswer(g.Output, set); ok {
				s.Extracted = got
				answered++
			}
		}
		if i < samplesKept {
			r.Samples = append(r.Samples, s)
		}
	}
	if len(gold) > 0 {
		acc, err := metrics.AnswerAccuracy(gold, outputs)
		if err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
		r.add("answer_accuracy", acc)
		r.add("answered", float64(answered)/float64(len(gold)))
	}
	return nil
}

// answerChoices is the answer set of a record with a commonsense-170k gold answer.
func answerChoices(rec data.Record) ([]string, bool) {
	if strings.TrimSpace(rec.Answer) == "" {
		return nil, false
	}
	return metrics.AnswerSet(rec.Answer)
}
