package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// wordPiece is BERT's greedy longest-match-first model: a word is cut into the longest
// vocabulary prefix, then the longest "##"-prefixed continuation, and so on; a word with
// a part no vocabulary entry covers, or longer than maxChars characters, becomes the
// unknown token as a whole.
type wordPiece struct {
	mapVocab
	unkToken string
	unkID    int // -1 when unkToken is not in the vocabulary
	prefix   string
	maxChars int
}

func newWordPiece(mj *modelJSON, vocab map[string]int) (*wordPiece, error) {
	m := &wordPiece{mapVocab: vocab, unkToken: "[UNK]", unkID: -1, prefix: "##", maxChars: 100}
	if mj.UnkToken != nil {
		m.unkToken = *mj.UnkToken
	}
	if mj.ContinuingSubwordPrefix != nil {
		m.prefix = *mj.ContinuingSubwordPrefix
	}
	if mj.MaxInputCharsPerWord != nil {
		if *mj.MaxInputCharsPerWord < 0 {
			return nil, malformed("model", fmt.Errorf("WordPiece max_input_chars_per_word %d", *mj.MaxInputCharsPerWord))
		}
		m.maxChars = *mj.MaxInputCharsPerWord
	}
	if id, ok := vocab[m.unkToken]; ok {
		m.unkID = id
	}
	return m, nil
}

func (m *wordPiece) tokenize(word string, out []int) ([]int, error) {
	if utf8.RuneCountInString(word) > m.maxChars {
		return m.unk(out)
	}
	n := len(out)
	var sb strings.Builder
	for start := 0; start < len(word); {
		end := len(word)
		found := false
		for start < end {
			sub := word[start:end]
			if start > 0 {
				sb.Reset()
				sb.WriteString(m.prefix)
				sb.WriteString(sub)
				sub = sb.String()
			}
			if id, ok := m.mapVocab[sub]; ok {
				out = append(out, id)
				found = true
				break
			}
			_, w := utf8.DecodeLastRuneInString(word[start:end])
			end -= w
		}
		if !found {
			return m.unk(out[:n])
		}
		start = end
	}
	return out, nil
}

func (m *wordPiece) unk(out []int) ([]int, error) {
	if m.unkID < 0 {
		return out, fmt.Errorf("%w: WordPiece unknown token %q is not in the vocabulary", ErrUnsupported, m.unkToken)
	}
	return append(out, m.unkID), nil
}

// wordLevel maps each word to its id, or to the unknown token.
type wordLevel struct {
	mapVocab
	unkToken string
}

func newWordLevel(mj *modelJSON, vocab map[string]int) *wordLevel {
	m := &wordLevel{mapVocab: vocab, unkToken: "<unk>"}
	if mj.UnkToken != nil {
		m.unkToken = *mj.UnkToken
	}
	return m
}

func (m *wordLevel) tokenize(word string, out []int) ([]int, error) {
	if id, ok := m.mapVocab[word]; ok {
		return append(out, id), nil
	}
	if id, ok := m.mapVocab[m.unkToken]; ok {
		return append(out, id), nil
	}
	return out, fmt.Errorf("%w: WordLevel unknown token %q is not in the vocabulary", ErrUnsupported, m.unkToken)
}

// decWordPiece joins WordPiece tokens: a token with the continuation prefix loses it and
// sticks to the previous one, any other token after the first gets a space in front; with
// cleanup the spaces BERT's pre-tokenizer put before punctuation and contractions go.
type decWordPiece struct {
	prefix  string
	cleanup bool
}

func (d decWordPiece) decodeChain(tokens []string) []string {
	out := make([]string, len(tokens))
	for i, t := range tokens {
		if i > 0 {
			if s, ok := strings.CutPrefix(t, d.prefix); ok {
				t = s
			} else {
				t = " " + t
			}
		}
		if d.cleanup {
			t = wordPieceCleanup(t)
		}
		out[i] = t
	}
	return out
}

// wordPieceCleanup undoes the spaces before punctuation and contractions, one replacement
// after the other in this order, as the reference does.
func wordPieceCleanup(s string) string {
	for _, r := range [...][2]string{
		{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
		{" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
	} {
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	return s
}
