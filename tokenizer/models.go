package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// model turns one pre-tokenized word into ids: BPE, WordPiece, WordLevel or Unigram.
type model interface {
	// tokenize appends the ids of word (non-empty) to out.
	tokenize(word string, out []int) ([]int, error)
	// tokenID looks a token string up in the model's vocabulary.
	tokenID(s string) (int, bool)
	// forEach calls f for every entry of the vocabulary.
	forEach(f func(tok string, id int))
}

// modelJSON is the "model" object of tokenizer.json; which fields matter depends on the
// type. Vocab is a {"token": id} object except for Unigram, where it is a list of
// ["token", score] pairs.
type modelJSON struct {
	Type                    string            `json:"type"`
	Vocab                   json.RawMessage   `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
	UnkToken                *string           `json:"unk_token"`
	UnkID                   *int              `json:"unk_id"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
	MaxInputCharsPerWord    *int              `json:"max_input_chars_per_word"`
	FuseUnk                 bool              `json:"fuse_unk"`
	ByteFallback            bool              `json:"byte_fallback"`
	IgnoreMerges            bool              `json:"ignore_merges"`
	Dropout                 *float64          `json:"dropout"`
}

func parseModel(raw json.RawMessage) (model, error) {
	if isNull(raw) {
		return nil, malformed("model", errors.New("missing"))
	}
	var mj modelJSON
	if err := json.Unmarshal(raw, &mj); err != nil {
		return nil, malformed("model", err)
	}
	if mj.Type == "" { // files from before the type tag
		switch {
		case mj.Merges != nil:
			mj.Type = "BPE"
		case bytes.HasPrefix(bytes.TrimSpace(mj.Vocab), []byte("[")):
			mj.Type = "Unigram"
		}
	}
	switch mj.Type {
	case "BPE":
		vocab, err := vocabMap(&mj)
		if err != nil {
			return nil, err
		}
		return parseBPE(&mj, vocab)
	case "WordPiece", "WordLevel":
		vocab, err := vocabMap(&mj)
		if err != nil {
			return nil, err
		}
		if mj.Type == "WordLevel" {
			return newWordLevel(&mj, vocab), nil
		}
		return newWordPiece(&mj, vocab)
	case "Unigram":
		return parseUnigram(&mj)
	}
	return nil, unsupported("model", "type %q (supported: BPE, WordPiece, WordLevel, Unigram)", mj.Type)
}

// vocabMap reads a {"token": id} vocabulary; ids must not be negative.
func vocabMap(mj *modelJSON) (map[string]int, error) {
	if isNull(mj.Vocab) {
		return nil, malformed("model", fmt.Errorf("%s without vocab", mj.Type))
	}
	var vocab map[string]int
	if err := json.Unmarshal(mj.Vocab, &vocab); err != nil {
		return nil, malformed("model", fmt.Errorf("%s vocab: %w", mj.Type, err))
	}
	for tok, id := range vocab {
		if id < 0 {
			return nil, malformed("model", fmt.Errorf("token %q has negative id %d", tok, id))
		}
	}
	return vocab, nil
}

// mapVocab is a {"token": id} vocabulary, shared by BPE, WordPiece and WordLevel.
type mapVocab map[string]int

func (v mapVocab) tokenID(s string) (int, bool) {
	id, ok := v[s]
	return id, ok
}

func (v mapVocab) forEach(f func(tok string, id int)) {
	for tok, id := range v {
		f(tok, id)
	}
}
