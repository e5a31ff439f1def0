package tokenizer

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode checks that Encode never panics on any family (those of both reference
// generators), that invalid UTF-8 is rejected, and that byte-level tokenizers round-trip
// every valid text exactly.
// Run longer with: go test -run '^$' -fuzz FuzzEncode -fuzztime 60s ./tokenizer/
func FuzzEncode(f *testing.F) {
	for _, s := range goldenTexts(f) {
		f.Add(s)
	}
	f.Add("\xff\xfe broken")
	f.Add(strings.Repeat("ab", 300))
	toks := map[string]*Tokenizer{}
	for _, fam := range append(slices.Clone(families), hfPipelines...) {
		toks[fam] = loadFamily(f, fam)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for fam, tok := range toks {
			ids, err := tok.Encode(s, true)
			if !utf8.ValidString(s) {
				if !errors.Is(err, ErrInvalidUTF8) {
					t.Fatalf("%s: Encode(%q) err = %v, want ErrInvalidUTF8", fam, s, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: Encode(%q): %v", fam, s, err)
			}
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("%s: Encode(%q) gave id %d outside [0, %d)", fam, s, id, tok.VocabSize())
				}
			}
			if _, err := tok.Decode(ids, true); err != nil {
				t.Fatalf("%s: Decode: %v", fam, err)
			}
		}
		if !utf8.ValidString(s) {
			return
		}
		for _, fam := range []string{"gpt2", "llama3", "cl100k", "o200k", "deepseek3"} {
			ids, _ := toks[fam].Encode(s, false)
			if got, _ := toks[fam].Decode(ids, false); got != s {
				t.Fatalf("%s: Decode(Encode(%q)) = %q", fam, s, got)
			}
		}
	})
}
