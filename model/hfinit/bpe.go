package hfinit

import (
	"sort"
	"strings"
	"unicode"
)

// Byte-level BPE (GPT-2 style): every byte is first mapped to a printable rune
// (byteRunes), words are split off by a simple pre-tokenizer, and merges of adjacent
// symbols are learned greedily by frequency.

// byteRunes is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves,
// the others to 256, 257, … in byte order.
func byteRunes() [256]rune {
	var m [256]rune
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n := 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// preTokenize splits text roughly as GPT-2's regex does: an optional leading space
// joined to a run of letters, of digits or of other symbols, and runs of whitespace.
// (Merges learned from a slightly different split are still valid merges.)
func preTokenize(text string) []string {
	class := func(r rune) int {
		switch {
		case unicode.IsLetter(r):
			return 1
		case unicode.IsDigit(r):
			return 2
		case unicode.IsSpace(r):
			return 3
		}
		return 4
	}
	var words []string
	rs := []rune(text)
	for i := 0; i < len(rs); {
		j := i
		if rs[i] == ' ' && i+1 < len(rs) && class(rs[i+1]) != 3 {
			j++
		}
		c := class(rs[j])
		k := j + 1
		for k < len(rs) && class(rs[k]) == c {
			k++
		}
		words = append(words, string(rs[i:k]))
		i = k
	}
	return words
}

// learnMerges learns up to n merges from corpus. Ties in frequency go to the pair whose
// merged string sorts first, so the result is deterministic. It stops early when no pair
// occurs twice.
func learnMerges(corpus string, n int) [][2]string {
	br := byteRunes()
	counts := map[string]int{}
	for _, w := range preTokenize(corpus) {
		counts[w]++
	}
	type word struct {
		syms  []string
		count int
	}
	var words []word
	keys := make([]string, 0, len(counts))
	for w := range counts {
		keys = append(keys, w)
	}
	sort.Strings(keys)
	for _, w := range keys {
		syms := make([]string, 0, len(w))
		for _, b := range []byte(w) {
			syms = append(syms, string(br[b]))
		}
		words = append(words, word{syms, counts[w]})
	}
	var merges [][2]string
	for len(merges) < n {
		pairs := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				pairs[[2]string{w.syms[i], w.syms[i+1]}] += w.count
			}
		}
		var best [2]string
		bestN := 1
		for p, c := range pairs {
			if c > bestN || (c == bestN && c > 1 && less(p, best)) {
				best, bestN = p, c
			}
		}
		if bestN < 2 {
			break
		}
		merges = append(merges, best)
		joined := best[0] + best[1]
		for wi := range words {
			syms := words[wi].syms
			out := syms[:0]
			for i := 0; i < len(syms); i++ {
				if i+1 < len(syms) && syms[i] == best[0] && syms[i+1] == best[1] {
					out = append(out, joined)
					i++
				} else {
					out = append(out, syms[i])
				}
			}
			words[wi].syms = out
		}
	}
	return merges
}

func less(a, b [2]string) bool {
	if x, y := a[0]+a[1], b[0]+b[1]; x != y {
		return x < y
	}
	return strings.Compare(a[0], b[0]) < 0
}
