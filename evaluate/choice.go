package evaluate

import (
	"fmt"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/metrics"
	"github.com/lrtrain/lrtrain/model"
)

// Choice is one multiple-choice question: an instruction record and, per option, the
// response text whose likelihood is scored.
type Choice struct {
	// Record holds the instruction and input (the prompt); its Output is not used.
	Record data.Record
	// Options name the options ("answer1", "true", …); Continuations are the response
	// texts scored for them, one per option.
	Options, Continuations []string
	// Gold is the index of the correct option, or −1 when unknown.
	Gold int
}

// ChoiceScores are the option log-likelihoods of every question, in order.
type ChoiceScores struct {
	// LogLik[i][j] is Σ log p(continuation j's tokens | prompt of question i), in nats,
	// without the EOS token; Tokens[i][j] counts those tokens.
	LogLik [][]float64
	Tokens [][]int
	// Pred is metrics.Choose's pick by summed log-likelihood, PredNorm by
	// log-likelihood per token (length-normalised); ties go to the first option.
	Pred, PredNorm []int
	Gold           []int
}

// ScoreChoices scores every option of every question by its log-likelihood under m
// (in eval mode, without autograd): each continuation is built as b builds instruction
// examples — BOS + rendered prompt, then the continuation, tokenised apart — and its
// response tokens (EOS excluded) are summed. Options.BatchSize counts continuations.
func ScoreChoices(m *model.Model, p *Pipeline, items []Choice, o Options) (*ChoiceScores, error) {
	if m.Architecture().Task != model.CausalLM {
		return nil, fmt.Errorf("%w: multiple choice needs a causal LM, %s is %v", ErrTask, m.Architecture().Name, m.Architecture().Task)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: no questions", ErrEmpty)
	}
	type slot struct{ item, option int }
	var examples []data.Example
	var slots []slot
	res := &ChoiceScores{}
	for i, it := range items {
		if len(it.Continuations) < 2 || len(it.Continuations) != len(it.Options) {
			return nil, fmt.Errorf("%w: question %d (%s:%d) has %d options and %d continuations",
				ErrTask, i, it.Record.File, it.Record.Line, len(it.Options), len(it.Continuations))
		}
		res.LogLik = append(res.LogLik, make([]float64, len(it.Continuations)))
		res.Tokens = append(res.Tokens, make([]int, len(it.Continuations)))
		res.Gold = append(res.Gold, it.Gold)
		for j, cont := range it.Continuations {
			rec := it.Record
			rec.Output = cont
			ex, err := p.Builder.Instruction(rec)
			if err != nil {
				return nil, fmt.Errorf("evaluate: question %d option %d: %w", i, j, err)
			}
			eos, hasEOS := p.Tok.EOS()
			dropEOS(&ex, eos, hasEOS)
			examples = append(examples, ex)
			slots = append(slots, slot{i, j})
		}
	}
	wasTraining := m.Training()
	m.Train(false)
	defer m.Train(wasTraining)
	bs := o.batchSize()
	for start := 0; start < len(examples); start += bs {
		end := min(start+bs, len(examples))
		sums, counts, err := labelLogLik(m, examples[start:end], p.Collator)
		if err != nil {
			return nil, fmt.Errorf("evaluate: continuations %d–%d: %w", start, end-1, err)
		}
		for k := range sums {
			s := slots[start+k]
			res.LogLik[s.item][s.option], res.Tokens[s.item][s.option] = sums[k], counts[k]
		}
	}
	for i := range items {
		opts := make([]metrics.Option, len(res.LogLik[i]))
		for j := range opts {
			opts[j] = metrics.Option{LogLik: res.LogLik[i][j], Tokens: res.Tokens[i][j]}
		}
		best, err := metrics.Choose(opts, metrics.SumLogLik)
		if err != nil {
			return nil, fmt.Errorf("evaluate: question %d: %w", i, err)
		}
		bestNorm, err := metrics.Choose(opts, metrics.MeanLogLik)
		if err != nil {
			return nil, fmt.Errorf("evaluate: question %d: %w", i, err)
		}
		res.Pred = append(res.Pred, best)
		res.PredNorm = append(res.PredNorm, bestNorm)
	}
	return res, nil
}

// Questions returns the scores in the form package metrics takes.
func (r *ChoiceScores) Questions() [][]metrics.Option {
	out := make([][]metrics.Option, len(r.LogLik))
	for i := range r.LogLik {
		for j := range r.LogLik[i] {
			out[i] = append(out[i], metrics.Option{LogLik: r.LogLik[i][j], Tokens: r.Tokens[i][j]})
		}
	}
	return out
}

// dropEOS stops scoring the EOS token that the builder appends to a response (kept
// when it is the only response token, so that every option scores something).
func dropEOS(ex *data.Example, eos int, hasEOS bool) {
	n := len(ex.InputIDs)
	if !hasEOS || ex.Truncated || n == 0 || ex.TargetTokens() < 2 {
		return
	}
	if ex.Labels[n-1] != data.IgnoreIndex && ex.InputIDs[n-1] == eos {
		ex.Labels[n-1] = data.IgnoreIndex
	}
}

// labelLogLik returns, per example, the summed log-probability of its labelled tokens
// and their number.
func labelLogLik(m *model.Model, examples []data.Example, col *data.Collator) ([]float64, []int, error) {
	bt, err := col.Collate(examples)
	if err != nil {
		return nil, nil, err
	}
	in, err := batchInputs(bt, false)
	if err != nil {
		return nil, nil, err
	}
	defer in.close()
	var lp []float64
	err = tensorkit.NoGrad(func() error {
		logits, err := m.Forward(in.Inputs)
		if err != nil {
			return err
		}
		defer logits.Drop()
		lp, err = nextTokenLogProbs(logits, bt.InputIDs, bt.Size, bt.SeqLen)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	t := bt.SeqLen
	sums, counts := make([]float64, bt.Size), make([]int, bt.Size)
	for r := 0; r < bt.Size; r++ {
		for pos := 1; pos < t; pos++ {
			if bt.Labels[r*t+pos] != data.IgnoreIndex {
				sums[r] += lp[r*(t-1)+pos-1]
				counts[r]++
			}
		}
	}
	return sums, counts, nil
}
