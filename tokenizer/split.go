package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// span is a byte range [start, end) of a piece of text and whether a split pattern
// matched it.
type span struct {
	start, end int
	match      bool
}

// matcher finds where a split pattern matches in s. Its spans cover s in order, the text
// between matches included as non-matching spans; empty matches may appear.
type matcher interface {
	findMatches(s string, out []span) []span
}

// splitBehavior says what Split does with the matches (the "behavior" of tokenizer.json).
type splitBehavior int

const (
	behIsolated           splitBehavior = iota // every match and every gap is a word
	behRemoved                                 // gaps are words, matches are dropped
	behMergedWithPrevious                      // a match joins the gap before it
	behMergedWithNext                          // a match joins the gap after it
	behContiguous                              // consecutive matches form one word
)

var behaviorNames = map[string]splitBehavior{
	"Isolated": behIsolated, "Removed": behRemoved, "MergedWithPrevious": behMergedWithPrevious,
	"MergedWithNext": behMergedWithNext, "Contiguous": behContiguous,
}

// preSplit is the Split pre-tokenizer and the family built on it (Digits, Punctuation,
// Whitespace, WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit). With invert the
// matches and the gaps swap roles before the behaviour applies.
type preSplit struct {
	m        matcher
	behavior splitBehavior
	invert   bool
}

func (p preSplit) preTokenize(in []word) []word {
	out := make([]word, 0, 2*len(in))
	if sp, ok := p.m.(splitPattern); ok && p.behavior == behIsolated && !p.invert {
		// The known regexes match everywhere: Isolated keeps every match as a word.
		var pieces []string
		for _, w := range in {
			pieces = sp.split(w.s, pieces[:0])
			for k, s := range pieces {
				out = append(out, word{s, w.atStart && k == 0})
			}
		}
		return out
	}
	var spans, kept []span
	for _, w := range in {
		spans = p.m.findMatches(w.s, spans[:0])
		if p.invert {
			for i := range spans {
				spans[i].match = !spans[i].match
			}
		}
		kept = applyBehavior(spans, p.behavior, kept[:0])
		for _, k := range kept {
			out = append(out, word{w.s[k.start:k.end], w.atStart && k.start == 0})
		}
	}
	return out
}

// applyBehavior turns matches into the non-empty ranges that become words, following the
// reference's NormalizedString::split step by step (its merge rules look at whether the
// previous span matched, empty matches included).
func applyBehavior(spans []span, b splitBehavior, out []span) []span {
	keep := func(s span) {
		if s.end > s.start {
			out = append(out, span{s.start, s.end, false})
		}
	}
	switch b {
	case behIsolated:
		for _, s := range spans {
			keep(s)
		}
	case behRemoved:
		for _, s := range spans {
			if !s.match {
				keep(s)
			}
		}
	case behContiguous, behMergedWithPrevious:
		var acc []span
		prev := false
		for _, s := range spans {
			merge := s.match == prev
			if b == behMergedWithPrevious {
				merge = s.match && !prev
			}
			if merge && len(acc) > 0 {
				acc[len(acc)-1].end = s.end
			} else {
				acc = append(acc, s)
			}
			prev = s.match
		}
		for _, s := range acc {
			keep(s)
		}
	case behMergedWithNext:
		var acc []span // built from the end
		prev := false
		for i := len(spans) - 1; i >= 0; i-- {
			s := spans[i]
			if s.match && !prev && len(acc) > 0 {
				acc[len(acc)-1].start = s.start
			} else {
				acc = append(acc, s)
			}
			prev = s.match
		}
		for i := len(acc) - 1; i >= 0; i-- {
			keep(acc[i])
		}
	}
	return out
}

// runeMatcher matches every rune for which it returns true, each rune on its own (the
// reference's character-predicate patterns).
type runeMatcher func(r rune) bool

func (f runeMatcher) findMatches(s string, out []span) []span {
	last := 0
	for i, r := range s {
		if !f(r) {
			continue
		}
		if last < i {
			out = append(out, span{last, i, false})
		}
		last = i + utf8.RuneLen(r)
		out = append(out, span{i, last, true})
	}
	if last < len(s) {
		out = append(out, span{last, len(s), false})
	}
	return out
}

// literalMatcher matches a non-empty string wherever it occurs, leftmost first, without
// overlaps (a Split "String" pattern).
type literalMatcher string

func (l literalMatcher) findMatches(s string, out []span) []span {
	last := 0
	for {
		j := strings.Index(s[last:], string(l))
		if j < 0 {
			break
		}
		if j > 0 {
			out = append(out, span{last, last + j, false})
		}
		out = append(out, span{last + j, last + j + len(l), true})
		last += j + len(l)
	}
	if last < len(s) {
		out = append(out, span{last, len(s), false})
	}
	return out
}

// findMatches makes the scanners matchers: their matches tile the input.
func (p splitPattern) findMatches(s string, out []span) []span {
	for i := 0; i < len(s); {
		j := p.matchAt(s, i)
		out = append(out, span{i, j, true})
		i = j
	}
	return out
}

// wordRunMatcher is the Whitespace pre-tokenizer's regex \w+|[^\w\s]+ (the reference
// compiles it with Rust's regex crate, whose \w is isWordRune): maximal runs of word
// runes and maximal runs of runes that are neither word runes nor white space.
type wordRunMatcher struct{}

func (wordRunMatcher) findMatches(s string, out []span) []span {
	kind := func(r rune) int {
		switch {
		case isWordRune(r):
			return 1
		case isSpace(r):
			return 0
		}
		return 2
	}
	last := 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		k := kind(r)
		if k == 0 {
			i += w
			continue
		}
		j := i + w
		for j < len(s) {
			r2, w2 := utf8.DecodeRuneInString(s[j:])
			if kind(r2) != k {
				break
			}
			j += w2
		}
		if last < i {
			out = append(out, span{last, i, false})
		}
		out = append(out, span{i, j, true})
		last, i = j, j
	}
	if last < len(s) {
		out = append(out, span{last, len(s), false})
	}
	return out
}
