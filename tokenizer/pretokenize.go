package tokenizer

import (
	"strings"
)

// word is a piece of text on its way to the model. atStart records whether it begins at
// offset 0 of the original input, which Metaspace's "first" prepend scheme needs.
type word struct {
	s       string
	atStart bool
}

// preTokenizer splits normalized pieces into the words the model encodes one by one.
type preTokenizer interface {
	preTokenize(in []word) []word
}

type preSequence []preTokenizer

func (q preSequence) preTokenize(in []word) []word {
	for _, p := range q {
		in = p.preTokenize(in)
	}
	return in
}

// preByteLevel is GPT-2's ByteLevel pre-tokenizer: optionally a space in front of each
// piece that lacks one, optionally the GPT-2 regex split, then every byte mapped to its
// alphabet rune.
type preByteLevel struct {
	addPrefixSpace bool
	useRegex       bool
}

func (p preByteLevel) preTokenize(in []word) []word {
	out := make([]word, 0, 2*len(in))
	var pieces []string
	var buf []byte
	var ends []int
	for _, w := range in {
		s := w.s
		if s == "" { // the reference prepends nothing to an empty piece and drops it
			continue
		}
		if p.addPrefixSpace && !strings.HasPrefix(s, " ") {
			s = " " + s
		}
		if p.useRegex {
			pieces = patternGPT2.split(s, pieces[:0])
		} else {
			pieces = append(pieces[:0], s)
		}
		// Map all pieces into one buffer and slice the words out of a single string.
		buf, ends = buf[:0], ends[:0]
		for _, piece := range pieces {
			buf = appendByteLevel(buf, piece)
			ends = append(ends, len(buf))
		}
		mapped, start := string(buf), 0
		for k, end := range ends {
			out = append(out, word{mapped[start:end], w.atStart && k == 0})
			start = end
		}
	}
	return out
}

// prependScheme says where Metaspace adds the replacement in front of a piece.
type prependScheme int

const (
	prependAlways prependScheme = iota
	prependFirst                // only the piece at the very start of the input
	prependNever
)

// preMetaspace replaces spaces with the replacement rune ('▁'), prepends it per the scheme
// when the piece does not already start with it, and with split cuts before every
// replacement rune (each word then starts with one).
type preMetaspace struct {
	replacement rune
	scheme      prependScheme
	split       bool
}

func (p preMetaspace) preTokenize(in []word) []word {
	rep := string(p.replacement)
	out := make([]word, 0, 2*len(in))
	for _, w := range in {
		if w.s == "" { // the reference prepends nothing to an empty piece and drops it
			continue
		}
		s := strings.ReplaceAll(w.s, " ", rep)
		if !strings.HasPrefix(s, rep) &&
			(p.scheme == prependAlways || (p.scheme == prependFirst && w.atStart)) {
			s = rep + s
		}
		if !p.split {
			out = append(out, word{s, w.atStart})
			continue
		}
		for start := 0; start < len(s); {
			end := len(s)
			if j := strings.Index(s[start+1:], rep); j >= 0 {
				end = start + 1 + j
			}
			out = append(out, word{s[start:end], w.atStart && start == 0})
			start = end
		}
	}
	return out
}
