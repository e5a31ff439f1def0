package tokenizer

// postProcessor adds the special tokens of a single sequence (BOS/EOS, CLS/SEP) when
// Encode is asked to.
type postProcessor interface {
	process(ids []int) []int
	// added is the number of ids process adds, which truncation reserves room for.
	added() int
}

// postTemplate is TemplateProcessing's "single" template flattened: ids before and after
// the sequence.
type postTemplate struct {
	before, after []int
}

func (p postTemplate) process(ids []int) []int {
	out := make([]int, 0, len(p.before)+len(ids)+len(p.after))
	out = append(out, p.before...)
	out = append(out, ids...)
	return append(out, p.after...)
}

func (p postTemplate) added() int { return len(p.before) + len(p.after) }

type postSequence []postProcessor

func (q postSequence) process(ids []int) []int {
	for _, p := range q {
		ids = p.process(ids)
	}
	return ids
}

func (q postSequence) added() int {
	n := 0
	for _, p := range q {
		n += p.added()
	}
	return n
}

// postNone stands for post-processors that only adjust offsets (ByteLevel).
type postNone struct{}

func (postNone) process(ids []int) []int { return ids }
func (postNone) added() int              { return 0 }
