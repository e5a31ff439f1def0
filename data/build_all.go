package data

import "fmt"

// BuildSummary reports what Build made.
type BuildSummary struct {
	Examples int
	// Truncated counts examples cut to MaxLen; Chunks counts the extra examples made by
	// splitting long text documents.
	Truncated, Chunks int
	// NoTargets counts examples without a single target token (an empty response from a
	// tokenizer without EOS); they are kept but teach nothing.
	NoTargets    int
	TargetTokens int64
	LongestLen   int
}

func (s BuildSummary) String() string {
	return fmt.Sprintf("%d examples (%d truncated, %d extra text chunks, %d without targets), "+
		"%d target tokens, longest %d tokens",
		s.Examples, s.Truncated, s.Chunks, s.NoTargets, s.TargetTokens, s.LongestLen)
}

// Build turns every record into examples, in record order, each remembering its record's
// index in Sources.
func (b *Builder) Build(records []Record) ([]Example, BuildSummary, error) {
	var sum BuildSummary
	out := make([]Example, 0, len(records))
	for i, rec := range records {
		var made []Example
		switch rec.Kind {
		case KindInstruction:
			ex, err := b.Instruction(rec)
			if err != nil {
				return nil, sum, err
			}
			made = []Example{ex}
		case KindClassification:
			ex, err := b.Classification(rec)
			if err != nil {
				return nil, sum, err
			}
			made = []Example{ex}
		case KindText:
			chunks, err := b.Text(rec)
			if err != nil {
				return nil, sum, err
			}
			made = chunks
			sum.Chunks += len(chunks) - 1
		default:
			return nil, sum, fmt.Errorf("%w: record %d (%s:%d) has unknown kind %v", ErrConfig, i, rec.File, rec.Line, rec.Kind)
		}
		for _, ex := range made {
			ex.Sources = []int{i}
			if ex.Truncated {
				sum.Truncated++
			}
			if !ex.IsClassification() {
				t := ex.TargetTokens()
				sum.TargetTokens += int64(t)
				if t == 0 {
					sum.NoTargets++
				}
			}
			sum.LongestLen = max(sum.LongestLen, ex.Len())
			out = append(out, ex)
		}
	}
	sum.Examples = len(out)
	return out, sum, nil
}
