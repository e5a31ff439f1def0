package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// decoder turns the token strings of ids back into text; like the reference, each step
// maps a list of strings to a list of strings and the results are concatenated.
type decoder interface {
	decodeChain(tokens []string) []string
}

type decSequence []decoder

func (q decSequence) decodeChain(tokens []string) []string {
	for _, d := range q {
		tokens = d.decodeChain(tokens)
	}
	return tokens
}

type decByteLevel struct{}

func (decByteLevel) decodeChain(tokens []string) []string {
	return []string{byteLevelDecode(tokens)}
}

// decReplace replaces a literal string in every token ("▁" by " " for SentencePiece).
type decReplace struct{ old, new string }

func (d decReplace) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = strings.ReplaceAll(t, d.old, d.new)
	}
	return out
}

// decRegexReplace replaces the matches of a regex in every token.
type decRegexReplace struct {
	m       matcher
	content string
}

func (d decRegexReplace) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		out[i] = replaceMatches(d.m, t, d.content)
	}
	return out
}

// decBPE is the BPEDecoder of end-of-word-suffix models: the suffix becomes a space, or
// nothing in the last token.
type decBPE struct{ suffix string }

func (d decBPE) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		rep := " "
		if i == len(tokens)-1 {
			rep = ""
		}
		out[i] = strings.ReplaceAll(t, d.suffix, rep)
	}
	return out
}

// decByteFallback turns runs of <0xNN> tokens into the text their bytes spell, or into one
// U+FFFD per byte when the run is not valid UTF-8.
type decByteFallback struct{}

func (decByteFallback) decodeChain(tokens []string) []string {
	out := make([]string, 0, len(tokens))
	var run []byte
	flush := func() {
		if len(run) == 0 {
			return
		}
		if utf8.Valid(run) {
			out = append(out, string(run))
		} else {
			for range run {
				out = append(out, "\uFFFD")
			}
		}
		run = run[:0]
	}
	for _, t := range tokens {
		if b, ok := parseByteToken(t); ok {
			run = append(run, b)
			continue
		}
		flush()
		out = append(out, t)
	}
	flush()
	return out
}

// parseByteToken parses "<0xNN>" (two hex digits, either case).
func parseByteToken(t string) (byte, bool) {
	if len(t) != 6 || !strings.HasPrefix(t, "<0x") || t[5] != '>' {
		return 0, false
	}
	hi, ok1 := hexDigit(t[3])
	lo, ok2 := hexDigit(t[4])
	return hi<<4 | lo, ok1 && ok2
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

type decFuse struct{}

func (decFuse) decodeChain(tokens []string) []string {
	return []string{strings.Join(tokens, "")}
}

// decStrip removes up to start leading and stop trailing occurrences of content from every
// token (Llama 2 strips the one space its Prepend normalizer added).
type decStrip struct {
	content     rune
	start, stop int
}

func (d decStrip) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		r := []rune(t)
		lo, hi := 0, len(r)
		for lo < d.start && lo < hi && r[lo] == d.content {
			lo++
		}
		for k := 0; k < d.stop && hi > lo && r[hi-1] == d.content; k++ {
			hi--
		}
		out[i] = string(r[lo:hi])
	}
	return out
}

// decMetaspace maps the replacement rune back to a space; in the first token it drops
// every replacement rune instead unless the prepend scheme is "never" (the reference does
// exactly this, which loses leading spaces of the text).
type decMetaspace struct {
	replacement rune
	scheme      prependScheme
}

func (d decMetaspace) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		if i == 0 && d.scheme != prependNever {
			out[i] = strings.ReplaceAll(t, string(d.replacement), "")
		} else {
			out[i] = strings.ReplaceAll(t, string(d.replacement), " ")
		}
	}
	return out
}
