package tokenizer

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/rivo/uniseg"
)

// normPrecompiled is the Precompiled normalizer of SentencePiece-based files (T5, ALBERT,
// XLM-R, mBART): precompiled_charsmap holds a darts-clone double array over the UTF-8
// bytes of the rewrite rules' keys, then their replacements, each ended by a NUL byte.
//
// Like the reference, the text is cut into extended grapheme clusters; a cluster shorter
// than 6 bytes is replaced as a whole when a rule's key is a prefix of it (the shortest
// such key wins, so "x\u0301" becomes the replacement of "x" when "x" has a rule), and
// otherwise each character is replaced by its own rule, if any.
type normPrecompiled struct {
	units      []uint32
	normalized string
}

func parsePrecompiled(charsmap string) (normPrecompiled, error) {
	raw, err := base64.StdEncoding.DecodeString(charsmap)
	if err != nil {
		return normPrecompiled{}, fmt.Errorf("precompiled_charsmap is not base64: %w", err)
	}
	if len(raw) < 4 {
		return normPrecompiled{}, errors.New("precompiled_charsmap is shorter than its header")
	}
	size := int(binary.LittleEndian.Uint32(raw))
	raw = raw[4:]
	if size%4 != 0 || size > len(raw) || size == 0 {
		return normPrecompiled{}, fmt.Errorf("precompiled_charsmap trie size %d does not fit its %d bytes", size, len(raw))
	}
	n := normPrecompiled{units: make([]uint32, size/4), normalized: string(raw[size:])}
	for i := range n.units {
		n.units[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	if !utf8.ValidString(n.normalized) {
		return normPrecompiled{}, errors.New("precompiled_charsmap replacements are not valid UTF-8")
	}
	return n, nil
}

// Fields of a double-array unit.
func unitHasLeaf(u uint32) bool { return u>>8&1 == 1 }
func unitValue(u uint32) int    { return int(u & (1<<31 - 1)) }
func unitLabel(u uint32) uint32 { return u & (1<<31 | 0xFF) }
func unitOffset(u uint32) int   { return int(u>>10) << ((u & (1 << 9)) >> 6) }

// lookup returns the replacement of the shortest key that s starts with.
func (n normPrecompiled) lookup(s string) (string, bool) {
	pos := unitOffset(n.units[0])
	for i := 0; i < len(s) && s[i] != 0; i++ {
		pos ^= int(s[i])
		if pos >= len(n.units) {
			return "", false
		}
		u := n.units[pos]
		if unitLabel(u) != uint32(s[i]) {
			return "", false
		}
		pos ^= unitOffset(u)
		if unitHasLeaf(u) {
			if pos >= len(n.units) {
				return "", false
			}
			start := unitValue(n.units[pos])
			if start > len(n.normalized) {
				return "", false
			}
			end := strings.IndexByte(n.normalized[start:], 0)
			if end < 0 {
				return n.normalized[start:], true
			}
			return n.normalized[start : start+end], true
		}
	}
	return "", false
}

func (n normPrecompiled) normalize(s string) string {
	var b strings.Builder
	state := -1
	for rest := s; rest != ""; {
		var g string
		g, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if len(g) < 6 {
			if rep, ok := n.lookup(g); ok {
				b.WriteString(rep)
				continue
			}
		}
		for i, r := range g {
			c := g[i : i+utf8.RuneLen(r)]
			if rep, ok := n.lookup(c); ok {
				b.WriteString(rep)
			} else {
				b.WriteString(c)
			}
		}
	}
	return b.String()
}
