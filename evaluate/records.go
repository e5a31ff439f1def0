package evaluate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/metrics"
)

// answerFormat finds commonsense-170k's option list: "Answer format: answer1/answer2".
var answerFormat = regexp.MustCompile(`(?i)answer format:\s*([^\n]+)`)

// OptionsOf returns the options of a commonsense-170k record: the slash-separated list
// after the instruction's last "Answer format:" (every commonsense-170k instruction
// ends with one: "true/false", "solution1/solution2", "answer1/…/answer5", …), else the
// answer set of the gold answer (metrics.AnswerSet).
func OptionsOf(rec data.Record) ([]string, bool) {
	if all := answerFormat.FindAllStringSubmatch(rec.Instruction, -1); len(all) > 0 {
		var opts []string
		for _, o := range strings.Split(all[len(all)-1][1], "/") {
			if o = strings.TrimSpace(o); o != "" {
				opts = append(opts, o)
			}
		}
		if len(opts) >= 2 {
			return opts, true
		}
	}
	return metrics.AnswerSet(rec.Answer)
}

// ChoicesFromRecords turns commonsense-style records into multiple-choice questions.
// Options come from OptionsOf. Each option's continuation is the record's output with
// its last occurrence of the gold answer replaced by the option ("the correct answer
// is answer2" becomes "the correct answer is answer1"), so the options are scored in
// the form the model was trained to produce; when the output does not contain the
// answer the continuation is the option alone. Gold is the answer's index among the
// options (case-insensitive); a record whose answer is not among them, or that has no
// options, is an error naming its file and line.
func ChoicesFromRecords(records []data.Record) ([]Choice, error) {
	var out []Choice
	for _, rec := range records {
		if rec.Kind != data.KindInstruction {
			return nil, fmt.Errorf("%w: %s:%d is a %v record, multiple choice needs instruction records",
				ErrTask, rec.File, rec.Line, rec.Kind)
		}
		opts, ok := OptionsOf(rec)
		if !ok {
			return nil, fmt.Errorf("%w: %s:%d: no options (no \"Answer format:\" in the instruction and answer %q is no known answer token)",
				ErrTask, rec.File, rec.Line, rec.Answer)
		}
		answer := strings.TrimSpace(rec.Answer)
		gold := slices.IndexFunc(opts, func(o string) bool { return strings.EqualFold(o, answer) })
		if gold < 0 {
			return nil, fmt.Errorf("%w: %s:%d: answer %q is not one of the options %v", ErrTask, rec.File, rec.Line, rec.Answer, opts)
		}
		c := Choice{Record: rec, Options: opts, Gold: gold}
		at := strings.LastIndex(rec.Output, answer)
		for _, o := range opts {
			cont := o
			if answer != "" && at >= 0 {
				cont = rec.Output[:at] + o + rec.Output[at+len(answer):]
			}
			c.Continuations = append(c.Continuations, cont)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrEmpty)
	}
	return out, nil
}
