package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The pre-tokenizer regexes this package knows, exactly as they appear in tokenizer.json
// files (and, for GPT-2, as the ByteLevel pre-tokenizer hard-codes it). Go's regexp has no
// lookahead, so instead of compiling them each one is implemented by a hand-written scanner
// (splitPattern.matchAt) that reproduces the backtracking engine's leftmost-first result.
const (
	regexGPT2   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
	regexLlama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	regexQwen2  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// splitPattern names one of the known regexes.
type splitPattern int

const (
	patternGPT2 splitPattern = iota + 1
	patternLlama3
	patternQwen2
)

// lookupPattern maps a regex from a tokenizer.json to the scanner that implements it.
func lookupPattern(regex string) (splitPattern, bool) {
	switch regex {
	case regexGPT2:
		return patternGPT2, true
	case regexLlama3:
		return patternLlama3, true
	case regexQwen2:
		return patternQwen2, true
	}
	return 0, false
}

func (p splitPattern) String() string {
	switch p {
	case patternGPT2:
		return "GPT-2"
	case patternLlama3:
		return "Llama 3"
	case patternQwen2:
		return "Qwen2"
	}
	return "unknown"
}

// runeClass partitions all runes the way the patterns see them: \s, \p{L}, \p{N} and the
// rest ([^\s\p{L}\p{N}]). The three named classes are disjoint.
type runeClass uint8

const (
	classOther runeClass = iota
	classSpace
	classLetter
	classNumber
)

// classify uses the Unicode White_Space property for \s (what Oniguruma's \s matches on
// UTF-8: U+0009–U+000D, U+0085 and the Zs, Zl, Zp categories) and the general categories
// L and N for \p{L} and \p{N}.
func classify(r rune) runeClass {
	switch {
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case isSpace(r):
		return classSpace
	}
	return classOther
}

func isSpace(r rune) bool {
	if r < utf8.RuneSelf {
		return r == ' ' || (r >= '\t' && r <= '\r')
	}
	return unicode.Is(unicode.White_Space, r)
}

// split appends the pieces of s (which must be valid UTF-8) to out. The matches of every
// known pattern tile the input: some alternative matches a non-empty prefix at any position.
func (p splitPattern) split(s string, out []string) []string {
	for i := 0; i < len(s); {
		j := p.matchAt(s, i)
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// matchAt returns the end of the match that the pattern's leftmost-first alternation finds
// at byte offset i (i < len(s)); the result is always > i.
func (p splitPattern) matchAt(s string, i int) int {
	r0, w0 := utf8.DecodeRuneInString(s[i:])
	if r0 == '\'' {
		if n := contraction(s[i+1:], p != patternGPT2); n > 0 {
			return i + 1 + n
		}
	}
	if p == patternGPT2 {
		return gpt2Match(s, i, r0, w0)
	}
	maxDigits := 1
	if p == patternLlama3 {
		maxDigits = 3
	}
	return llama3Match(s, i, r0, w0, maxDigits)
}

// contractions are the suffixes after the apostrophe, in the patterns' order.
var contractions = [...]string{"s", "t", "re", "ve", "m", "ll", "d"}

// contraction returns the byte length of the contraction suffix that rest starts with, or 0.
// With fold it matches case-insensitively as (?i:...) does, by Unicode simple case folding
// (so "'S" and "'ſ" match too).
func contraction(rest string, fold bool) int {
	for _, c := range contractions {
		n, ok := 0, true
		for _, want := range c {
			if n >= len(rest) {
				ok = false
				break
			}
			r, w := utf8.DecodeRuneInString(rest[n:])
			if r != want && !(fold && equalFold(r, want)) {
				ok = false
				break
			}
			n += w
		}
		if ok {
			return n
		}
	}
	return 0
}

// equalFold reports whether r is in the simple case-folding orbit of want.
func equalFold(r, want rune) bool {
	for f := unicode.SimpleFold(want); f != want; f = unicode.SimpleFold(f) {
		if f == r {
			return true
		}
	}
	return false
}

// runOf returns the end of the run of class c starting at byte offset j.
func runOf(s string, j int, c runeClass) int {
	for j < len(s) {
		r, w := utf8.DecodeRuneInString(s[j:])
		if classify(r) != c {
			break
		}
		j += w
	}
	return j
}

// gpt2Match implements the alternatives after the contractions of
//
//	' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+'
//
// An optional leading ' ' can only belong to the letter, number or other run that follows
// it; without it, a space at i matches none of the first three, so the order of the checks
// below is the order of the alternatives.
func gpt2Match(s string, i int, r0 rune, w0 int) int {
	if r0 == ' ' && i+1 < len(s) {
		r1, w1 := utf8.DecodeRuneInString(s[i+1:])
		if c := classify(r1); c != classSpace {
			return runOf(s, i+1+w1, c)
		}
	}
	if c := classify(r0); c != classSpace {
		return runOf(s, i+w0, c)
	}
	return spaceRun(s, i)
}

// llama3Match implements the alternatives after the contractions of the Llama 3 (maxDigits
// 3) and Qwen2 (maxDigits 1) patterns:
//
//	[^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,maxDigits} | ' ?[^\s\p{L}\p{N}]+[\r\n]*' |
//	\s*[\r\n]+ | \s+(?!\S) | \s+
func llama3Match(s string, i int, r0 rune, w0 int, maxDigits int) int {
	c0 := classify(r0)
	// [^\r\n\p{L}\p{N}]?\p{L}+: a letter run, optionally led by one rune that is neither a
	// line break, a letter nor a number (a space, a tab, punctuation, a symbol...).
	if c0 == classLetter {
		return runOf(s, i+w0, classLetter)
	}
	if c0 != classNumber && r0 != '\r' && r0 != '\n' && i+w0 < len(s) {
		r1, w1 := utf8.DecodeRuneInString(s[i+w0:])
		if classify(r1) == classLetter {
			return runOf(s, i+w0+w1, classLetter)
		}
	}
	// \p{N}{1,maxDigits}
	if c0 == classNumber {
		j := i + w0
		for n := 1; n < maxDigits && j < len(s); n++ {
			r, w := utf8.DecodeRuneInString(s[j:])
			if classify(r) != classNumber {
				break
			}
			j += w
		}
		return j
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := -1
	if r0 == ' ' && i+1 < len(s) {
		if r1, _ := utf8.DecodeRuneInString(s[i+1:]); classify(r1) == classOther {
			start = i + 1
		}
	}
	if start < 0 && c0 == classOther {
		start = i
	}
	if start >= 0 {
		j := runOf(s, start, classOther)
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}
	// r0 is white space. \s*[\r\n]+ backtracks \s* to the last line break of the run.
	end := runOf(s, i, classSpace)
	lastBreak := -1
	for k := i; k < end; k++ { // \r and \n are ASCII, so a byte scan is exact
		if s[k] == '\r' || s[k] == '\n' {
			lastBreak = k
		}
	}
	if lastBreak >= 0 {
		return lastBreak + 1
	}
	return spaceRun(s, i)
}

// spaceRun implements \s+(?!\S)|\s+ at i, where s[i] is white space: the whole run if it
// ends the input; otherwise the run minus its last rune (which then leads the next piece,
// e.g. " b"), unless the run is a single rune, which \s+ takes alone.
func spaceRun(s string, i int) int {
	end := runOf(s, i, classSpace)
	if end == len(s) {
		return end
	}
	_, w := utf8.DecodeLastRuneInString(s[i:end])
	if end-w > i {
		return end - w
	}
	return end
}
