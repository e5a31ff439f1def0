package data

import "fmt"

// Tokenizer is what this package needs from a tokenizer. Encode must not add BOS or EOS
// when addSpecial is false; the builders add them themselves from BOS and EOS. Each of BOS,
// EOS and PAD reports false when the tokenizer has no such token.
type Tokenizer interface {
	Encode(text string, addSpecial bool) ([]int, error)
	BOS() (int, bool)
	EOS() (int, bool)
	PAD() (int, bool)
}

// ByteTokenizer is the simplest real tokenizer: one token per UTF-8 byte, id = byte +
// ByteOffset, with PAD = 0, BOS = 1 and EOS = 2. It is meant for tests and examples; its
// ids are easy to read back (see Decode).
type ByteTokenizer struct {
	// NoPAD makes PAD report false, as for tokenizers (LLaMA's) that have none.
	NoPAD bool
}

// Special ids of ByteTokenizer and the offset of its byte ids.
const (
	BytePAD    = 0
	ByteBOS    = 1
	ByteEOS    = 2
	ByteOffset = 3
)

// Encode returns one id per byte of text, wrapped in BOS and EOS when addSpecial is true.
func (t ByteTokenizer) Encode(text string, addSpecial bool) ([]int, error) {
	ids := make([]int, 0, len(text)+2)
	if addSpecial {
		ids = append(ids, ByteBOS)
	}
	for i := 0; i < len(text); i++ {
		ids = append(ids, int(text[i])+ByteOffset)
	}
	if addSpecial {
		ids = append(ids, ByteEOS)
	}
	return ids, nil
}

// Decode turns ids back into text, writing special ids as <pad>, <s> and </s>.
func (t ByteTokenizer) Decode(ids []int) (string, error) {
	out := make([]byte, 0, len(ids))
	for _, id := range ids {
		switch {
		case id == BytePAD:
			out = append(out, "<pad>"...)
		case id == ByteBOS:
			out = append(out, "<s>"...)
		case id == ByteEOS:
			out = append(out, "</s>"...)
		case id >= ByteOffset && id < ByteOffset+256:
			out = append(out, byte(id-ByteOffset))
		default:
			return "", fmt.Errorf("data: byte tokenizer: id %d out of range", id)
		}
	}
	return string(out), nil
}

// BOS returns ByteBOS.
func (t ByteTokenizer) BOS() (int, bool) { return ByteBOS, true }

// EOS returns ByteEOS.
func (t ByteTokenizer) EOS() (int, bool) { return ByteEOS, true }

// PAD returns BytePAD, or false when NoPAD is set.
func (t ByteTokenizer) PAD() (int, bool) { return BytePAD, !t.NoPAD }
