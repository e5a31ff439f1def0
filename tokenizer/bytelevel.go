package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// The byte-level alphabet of GPT-2: every byte gets a printable rune. Bytes that are
// already printable Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other
// 68 bytes, in increasing order, get U+0100, U+0101, ... (so ' ' is 'Ġ' and '\n' is 'Ċ').
var (
	byteToRune [256]rune
	runeToByte = map[rune]byte{}
)

func init() {
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = next
			next++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// appendByteLevel appends the alphabet runes of the bytes of s to buf, UTF-8 encoded.
func appendByteLevel(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		buf = utf8.AppendRune(buf, byteToRune[s[i]])
	}
	return buf
}

// byteLevelDecode maps the runes of each token back to bytes (a token with a rune outside
// the alphabet, such as an added token containing a space, contributes its own bytes) and
// decodes the result as UTF-8, replacing invalid sequences as lossyUTF8 does.
func byteLevelDecode(tokens []string) string {
	var buf []byte
	for _, t := range tokens {
		start := len(buf)
		ok := true
		for _, r := range t {
			b, found := runeToByte[r]
			if !found {
				ok = false
				break
			}
			buf = append(buf, b)
		}
		if !ok {
			buf = append(buf[:start], t...)
		}
	}
	return lossyUTF8(buf)
}

// lossyUTF8 converts b to a string, replacing each maximal subpart of an ill-formed
// sequence with one U+FFFD (the Unicode "substitution of maximal subparts" practice, which
// Rust's String::from_utf8_lossy and Python's errors="replace" follow; Go's
// strings.ToValidUTF8 would instead collapse runs of bad bytes).
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, w := utf8.DecodeRune(b)
		if r == utf8.RuneError && w == 1 {
			sb.WriteRune(utf8.RuneError)
			b = b[maximalSubpart(b):]
			continue
		}
		sb.Write(b[:w])
		b = b[w:]
	}
	return sb.String()
}

// maximalSubpart returns the length of the longest prefix of b (which starts with an
// ill-formed sequence) that is a prefix of some well-formed UTF-8 sequence, or 1.
func maximalSubpart(b []byte) int {
	lo, hi := byte(0x80), byte(0xBF)
	var need int
	switch c := b[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		n++
		lo, hi = 0x80, 0xBF
	}
	return n
}
