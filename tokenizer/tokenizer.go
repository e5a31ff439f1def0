package tokenizer

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Errors returned by this package; test with errors.Is.
var (
	ErrNotFound    = errors.New("tokenizer: file not found")
	ErrMalformed   = errors.New("tokenizer: malformed file")
	ErrUnsupported = errors.New("tokenizer: unsupported component")
	ErrInvalidUTF8 = errors.New("tokenizer: text is not valid UTF-8")
	ErrUnknownID   = errors.New("tokenizer: unknown token id")
	ErrBadTemplate = errors.New("tokenizer: unknown chat template")
	ErrBadMessages = errors.New("tokenizer: messages do not fit the template")
)

// Tokenizer encodes text to token ids and back. It is safe for concurrent use, except
// SetMaxLength, which must not race with Encode.
type Tokenizer struct {
	normalizer normalizer    // nil: none
	pre        preTokenizer  // nil: the whole piece is one word
	model      model         // BPE, WordPiece, WordLevel or Unigram
	decoder    decoder       // nil: tokens joined with spaces
	post       postProcessor // nil: nothing added
	added      addedVocab

	idToToken []string // model vocabulary and added tokens by id ("" for holes)
	maxLen    int      // 0: no truncation
	truncLeft bool     // truncation keeps the end instead of the start

	bos, eos, pad int // -1 when not defined
	chatTemplate  string
}

// buildVocab registers the added tokens and the reverse vocabulary. An added token whose
// content is already in the model's vocabulary takes that id, as in the reference.
func (t *Tokenizer) buildVocab(f *fileJSON) error {
	maxID := -1
	t.model.forEach(func(_ string, id int) { maxID = max(maxID, id) })
	t.added = addedVocab{byID: map[int]*addedToken{}, byText: map[string]*addedToken{},
		rawTrie: newTrie(), normTrie: newTrie(), specialText: map[string]bool{}}
	for _, a := range f.AddedTokens {
		if a.Content == "" {
			continue
		}
		id := a.ID
		if vid, ok := t.model.tokenID(a.Content); ok {
			id = vid
		}
		if id < 0 {
			return malformed("added_tokens", fmt.Errorf("token %q has negative id %d", a.Content, id))
		}
		tok := &addedToken{id: id, content: a.Content, special: a.Special, lstrip: a.LStrip,
			rstrip: a.RStrip, singleWord: a.SingleWord, normalized: a.Normalized, decoded: a.Content}
		t.added.byID[id] = tok
		t.added.byText[a.Content] = tok
		if tok.special {
			t.added.specialText[a.Content] = true
		}
		switch {
		case tok.normalized && t.normalizer != nil:
			// The reference decodes such a token to its normalized form (tokenizers 0.23).
			tok.decoded = t.normalizer.normalize(a.Content)
			t.added.normTrie.insert(tok.decoded, tok)
		case tok.normalized:
			t.added.normTrie.insert(a.Content, tok)
		default:
			t.added.rawTrie.insert(a.Content, tok)
		}
		maxID = max(maxID, id)
	}
	if maxID >= 1<<26 {
		return malformed("vocab", fmt.Errorf("id %d is implausibly large", maxID))
	}
	t.idToToken = make([]string, maxID+1)
	t.model.forEach(func(tok string, id int) { t.idToToken[id] = tok })
	for id, a := range t.added.byID {
		t.idToToken[id] = a.content
	}
	return nil
}

// Encode returns the token ids of text. With addSpecial the post-processor's tokens (BOS,
// EOS, CLS, SEP) are added. Added tokens such as "<|eot_id|>" are recognised inside the
// text whatever addSpecial says, as in the reference. When a maximum length is set the
// result is truncated to it, room for the special tokens included.
func (t *Tokenizer) Encode(text string, addSpecial bool) ([]int, error) {
	if !utf8.ValidString(text) {
		return nil, ErrInvalidUTF8
	}
	var ids []int
	var err error
	for _, seg := range t.added.split(text, t.added.rawTrie, nil) {
		if seg.tok != nil {
			ids = append(ids, seg.tok.id)
			continue
		}
		piece := text[seg.start:seg.end]
		if t.normalizer != nil {
			piece = t.normalizer.normalize(piece)
		}
		for _, sub := range t.added.split(piece, t.added.normTrie, nil) {
			if sub.tok != nil {
				ids = append(ids, sub.tok.id)
				continue
			}
			if sub.start == sub.end {
				continue
			}
			words := []word{{piece[sub.start:sub.end], seg.start == 0 && sub.start == 0}}
			if t.pre != nil {
				words = t.pre.preTokenize(words)
			}
			for _, w := range words {
				if ids, err = t.model.tokenize(w.s, ids); err != nil {
					return nil, err
				}
			}
		}
	}
	if t.maxLen > 0 {
		limit := t.maxLen
		if addSpecial && t.post != nil {
			limit = max(0, limit-t.post.added())
		}
		if len(ids) > limit {
			if t.truncLeft {
				ids = ids[len(ids)-limit:]
			} else {
				ids = ids[:limit]
			}
		}
	}
	if addSpecial && t.post != nil {
		ids = t.post.process(ids)
	}
	return ids, nil
}

// Decode returns the text of ids. With skipSpecial, added tokens marked special are left
// out. Byte sequences that are not valid UTF-8 decode to U+FFFD.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) (string, error) {
	tokens := make([]string, 0, len(ids))
	for _, id := range ids {
		var s string
		if a, ok := t.added.byID[id]; ok {
			s = a.decoded
		} else if id < 0 || id >= len(t.idToToken) || t.idToToken[id] == "" {
			return "", fmt.Errorf("%w: %d (vocabulary size %d)", ErrUnknownID, id, len(t.idToToken))
		} else {
			s = t.idToToken[id]
		}
		if !(skipSpecial && t.added.specialText[s]) {
			tokens = append(tokens, s)
		}
	}
	if t.decoder == nil {
		return strings.Join(tokens, " "), nil
	}
	return strings.Join(t.decoder.decodeChain(tokens), ""), nil
}

// TokenID returns the id of a token string of the vocabulary or an added token.
func (t *Tokenizer) TokenID(s string) (int, bool) {
	if a, ok := t.added.byText[s]; ok {
		return a.id, true
	}
	return t.model.tokenID(s)
}

// Token returns the string of an id, as the vocabulary spells it (byte-level tokens in
// their alphabet, SentencePiece ones with '▁').
func (t *Tokenizer) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.idToToken) || t.idToToken[id] == "" {
		return "", false
	}
	return t.idToToken[id], true
}

// VocabSize is one more than the largest id of the vocabulary and the added tokens: the
// number of rows an embedding table needs.
func (t *Tokenizer) VocabSize() int { return len(t.idToToken) }

// IsSpecial reports whether id is an added token marked special.
func (t *Tokenizer) IsSpecial(id int) bool {
	a, ok := t.added.byID[id]
	return ok && a.special
}

// BOS returns the beginning-of-sequence id named by tokenizer_config.json.
func (t *Tokenizer) BOS() (int, bool) { return t.bos, t.bos >= 0 }

// EOS returns the end-of-sequence id named by tokenizer_config.json.
func (t *Tokenizer) EOS() (int, bool) { return t.eos, t.eos >= 0 }

// PAD returns the padding id named by tokenizer_config.json.
func (t *Tokenizer) PAD() (int, bool) { return t.pad, t.pad >= 0 }

// ChatTemplate returns the Jinja chat template text of tokenizer_config.json, or "".
// It is kept as text only; see Template for the formats rendered in Go.
func (t *Tokenizer) ChatTemplate() string { return t.chatTemplate }

// SetMaxLength sets the length Encode truncates to (0: no truncation), special tokens
// included. Load takes it from tokenizer.json's "truncation" when present, along with the
// direction (the start is kept unless the file says "Left").
func (t *Tokenizer) SetMaxLength(n int) { t.maxLen = max(n, 0) }

// MaxLength returns the truncation length, 0 when none.
func (t *Tokenizer) MaxLength() int { return t.maxLen }
