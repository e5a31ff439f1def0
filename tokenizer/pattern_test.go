package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// Hand-checked splits of the behaviours that need the regexes' lookahead and backtracking.
// golden_test.go compares many more texts against Python's regex engine.
func TestPatternWhitespaceAndDigits(t *testing.T) {
	cases := []struct {
		pattern splitPattern
		text    string
		want    []string
	}{
		// \s+(?!\S) leaves the last space of a run to lead the next word.
		{patternGPT2, "a   b", []string{"a", "  ", " b"}},
		{patternLlama3, "a   b", []string{"a", "  ", " b"}},
		// A run that ends the text is kept whole.
		{patternGPT2, "a  ", []string{"a", "  "}},
		{patternLlama3, "end \t ", []string{"end", " \t "}},
		// A single space before a number: GPT-2 attaches it, Llama 3 cannot.
		{patternGPT2, "x 123", []string{"x", " 123"}},
		{patternLlama3, "x 123", []string{"x", " ", "123"}},
		// GPT-2 keeps newlines in the run; Llama 3 ends a run at its last line break.
		{patternGPT2, "\n\n  x", []string{"\n\n ", " x"}},
		{patternLlama3, "\n\n  x", []string{"\n\n", " ", " x"}},
		{patternLlama3, "a \n b", []string{"a", " \n", " b"}},
		{patternLlama3, "!\n\nfoo", []string{"!\n\n", "foo"}},
		// Digits: GPT-2 whole runs, Llama 3 groups of up to three, Qwen2 one by one.
		{patternGPT2, "12345", []string{"12345"}},
		{patternLlama3, "12345", []string{"123", "45"}},
		{patternQwen2, "123", []string{"1", "2", "3"}},
		// Contractions: GPT-2 lower case only, Llama 3 any case (Unicode simple folding).
		{patternGPT2, "DON'T don't", []string{"DON", "'", "T", " don", "'t"}},
		{patternLlama3, "DON'T it'ſ", []string{"DON", "'T", " it", "'ſ"}},
		// Llama 3 lets one non-letter (not a line break) lead a letter run.
		{patternLlama3, "\thello 'world", []string{"\thello", " '", "world"}},
		{patternLlama3, "(x)", []string{"(x", ")"}},
		// Non-ASCII white space is \s but not the optional ' '.
		{patternGPT2, "a\u3000b", []string{"a", "\u3000", "b"}},
		{patternLlama3, "a\u3000b", []string{"a", "\u3000b"}},
		// Marks are neither letters nor numbers.
		{patternGPT2, "e\u0301t", []string{"e", "\u0301", "t"}},
	}
	for _, c := range cases {
		got := c.pattern.split(c.text, nil)
		if !slices.Equal(got, c.want) {
			t.Errorf("%v split %q = %q, want %q", c.pattern, c.text, got, c.want)
		}
	}
}

func TestPatternPiecesTileTheInput(t *testing.T) {
	texts := []string{"", " ", "x", "  \r\n\t ", "😀 😀", "a'b'c 's", strings.Repeat("ab 12 ", 50)}
	for _, p := range []splitPattern{patternGPT2, patternLlama3, patternQwen2} {
		for _, text := range texts {
			pieces := p.split(text, nil)
			if strings.Join(pieces, "") != text {
				t.Errorf("%v: pieces %q do not rebuild %q", p, pieces, text)
			}
			for _, s := range pieces {
				if s == "" || !utf8.ValidString(s) {
					t.Errorf("%v: bad piece %q of %q", p, s, text)
				}
			}
		}
	}
}

func TestLookupPatternRejectsOtherRegexes(t *testing.T) {
	for _, re := range []string{"", `\s+`, regexGPT2 + "|x", `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,2}`} {
		if _, ok := lookupPattern(re); ok {
			t.Errorf("lookupPattern(%q) accepted an unknown regex", re)
		}
	}
}
