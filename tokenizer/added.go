package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// addedToken is one entry of tokenizer.json's "added_tokens".
type addedToken struct {
	id         int
	content    string
	special    bool
	lstrip     bool   // also take the white space before a match
	rstrip     bool   // also take the white space after a match
	singleWord bool   // match only where not preceded or followed by a word character
	normalized bool   // match against the normalized text (content normalized the same way)
	decoded    string // what Decode uses: the content, normalized when normalized is set
}

// addedVocab splits text on added tokens before normalization and the model see it, as
// the reference does in two passes: tokens with normalized=false are found in the raw text,
// then tokens with normalized=true in each remaining normalized piece.
type addedVocab struct {
	byID     map[int]*addedToken
	byText   map[string]*addedToken
	rawTrie  *trie // normalized=false tokens, keyed by content
	normTrie *trie // normalized=true tokens, keyed by their normalized content
	// specialText holds the contents of the special tokens. Like the reference, Decode
	// skips a token by its text, so a normalized special token whose normalized form
	// differs from its content is not skipped.
	specialText map[string]bool
}

// segment is a byte range [start, end) of a string; tok is the added token it matched, or
// nil for text between matches.
type segment struct {
	start, end int
	tok        *addedToken
}

// split cuts s at the leftmost-longest matches of the trie's tokens, honouring single_word,
// lstrip and rstrip exactly as the reference's AddedVocabulary::find_matches does. A match
// discarded by single_word still consumes its bytes from the search.
func (v *addedVocab) split(s string, t *trie, out []segment) []segment {
	if t == nil || t.empty() {
		return append(out, segment{0, len(s), nil})
	}
	startOffset := 0
	for i := 0; i < len(s); {
		tok, end := t.longestAt(s, i)
		if tok == nil {
			i++
			continue
		}
		start, stop := i, end
		i = end
		if tok.singleWord {
			startOK := start == 0 || !endsWithWord(s[:start])
			stopOK := stop == len(s) || !startsWithWord(s[stop:])
			if !startOK || !stopOK {
				continue
			}
		}
		if tok.lstrip {
			start = max(leadingSpaceStart(s[:start]), startOffset)
		}
		if tok.rstrip {
			stop += trailingSpaceLen(s[stop:])
		}
		// An rstrip could reach past the next match's start; never go backwards.
		start = max(start, startOffset)
		if startOffset < start {
			out = append(out, segment{startOffset, start, nil})
		}
		out = append(out, segment{start, stop, tok})
		startOffset = stop
		i = max(i, stop)
	}
	if startOffset < len(s) || len(s) == 0 {
		out = append(out, segment{startOffset, len(s), nil})
	}
	return out
}

// isWordRune is the Unicode \w of the reference's regex crate: Alphabetic, marks, decimal
// digits, connector punctuation and the joiners.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_Alphabetic, r) ||
		unicode.IsMark(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Pc, r) ||
		unicode.Is(unicode.Join_Control, r)
}

func endsWithWord(s string) bool {
	r, _ := utf8.DecodeLastRuneInString(s)
	return s != "" && isWordRune(r)
}

func startsWithWord(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return s != "" && isWordRune(r)
}

// leadingSpaceStart returns where the trailing white space of s begins.
func leadingSpaceStart(s string) int {
	for len(s) > 0 {
		r, w := utf8.DecodeLastRuneInString(s)
		if !isSpace(r) {
			break
		}
		s = s[:len(s)-w]
	}
	return len(s)
}

// trailingSpaceLen returns the byte length of the white space that s starts with.
func trailingSpaceLen(s string) int {
	n := 0
	for n < len(s) {
		r, w := utf8.DecodeRuneInString(s[n:])
		if !isSpace(r) {
			break
		}
		n += w
	}
	return n
}

// trie is a byte trie over token strings for leftmost-longest matching.
type trie struct {
	nodes []trieNode
	first [256]bool // bytes that start some key
}

type trieNode struct {
	next map[byte]int32
	tok  *addedToken
}

func newTrie() *trie { return &trie{nodes: []trieNode{{}}} }

func (t *trie) empty() bool { return len(t.nodes) == 1 }

func (t *trie) insert(key string, tok *addedToken) {
	if key != "" {
		t.first[key[0]] = true
	}
	n := int32(0)
	for i := 0; i < len(key); i++ {
		c, ok := t.nodes[n].next[key[i]]
		if !ok {
			if t.nodes[n].next == nil {
				t.nodes[n].next = map[byte]int32{}
			}
			c = int32(len(t.nodes))
			t.nodes[n].next[key[i]] = c
			t.nodes = append(t.nodes, trieNode{})
		}
		n = c
	}
	if t.nodes[n].tok == nil { // the first of duplicate keys wins
		t.nodes[n].tok = tok
	}
}

// longestAt returns the longest token that s[i:] starts with and the end of its match.
func (t *trie) longestAt(s string, i int) (*addedToken, int) {
	if !t.first[s[i]] {
		return nil, 0
	}
	var best *addedToken
	end := 0
	n := int32(0)
	for j := i; j < len(s); j++ {
		c, ok := t.nodes[n].next[s[j]]
		if !ok {
			break
		}
		n = c
		if t.nodes[n].tok != nil {
			best, end = t.nodes[n].tok, j+1
		}
	}
	return best, end
}
