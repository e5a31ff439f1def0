package tokenizer

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normBert is BERT's normalizer: optionally drop control characters and turn every kind
// of white space into ' ' (clean_text), put spaces around CJK ideographs
// (handle_chinese_chars), decompose and drop non-spacing marks (strip_accents, which
// follows lowercase when unset) and lower-case, in that order.
type normBert struct {
	cleanText, chineseChars, stripAccents, lowercase bool
}

func (n normBert) normalize(s string) string {
	if n.cleanText {
		s = strings.Map(func(r rune) rune {
			switch {
			case r == 0 || r == unicode.ReplacementChar || isBertControl(r):
				return -1
			case r == '\t' || r == '\n' || r == '\r' || isSpace(r):
				return ' '
			}
			return r
		}, s)
	}
	if n.chineseChars && strings.IndexFunc(s, isCJK) >= 0 {
		var b strings.Builder
		for _, r := range s {
			if isCJK(r) {
				b.WriteByte(' ')
				b.WriteRune(r)
				b.WriteByte(' ')
			} else {
				b.WriteRune(r)
			}
		}
		s = b.String()
	}
	if n.stripAccents {
		s = stripMarks(norm.NFD.String(s), unicode.Mn)
	}
	if n.lowercase {
		s = lowercase(s)
	}
	return s
}

// isBertControl is the reference's control test: the Other categories Cc, Cf and Co, but
// not tab, newline and carriage return (which clean_text treats as white space). The
// reference's table marks no character Cn, so unassigned code points are kept.
func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co)
}

// isCJK reports whether r is in one of the CJK ideograph blocks BERT splits around.
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF || r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F || r >= 0x2B920 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x2F800 && r <= 0x2FA1F
}

// stripMarks removes the runes of the given categories.
func stripMarks(s string, cats ...*unicode.RangeTable) string {
	return strings.Map(func(r rune) rune {
		if unicode.In(r, cats...) {
			return -1
		}
		return r
	}, s)
}

// lowercase maps every rune to its full lower-case form, rune by rune as the reference
// does (no final-sigma rule). U+0130 is the one rune whose full mapping differs from the
// simple one Go's unicode.ToLower gives.
func lowercase(s string) string {
	return strings.Map(unicode.ToLower, strings.ReplaceAll(s, "\u0130", "i\u0307"))
}

// normLowercase is the Lowercase normalizer.
type normLowercase struct{}

func (normLowercase) normalize(s string) string { return lowercase(s) }

// normStripAccents is the StripAccents normalizer: it drops all combining marks (Mn, Mc,
// Me) and is meant to follow NFD or NFKD.
type normStripAccents struct{}

func (normStripAccents) normalize(s string) string { return stripMarks(s, unicode.M) }

// normNmt is the Nmt normalizer: it drops some ASCII control characters and maps other
// white-space-like code points to ' '.
type normNmt struct{}

func (normNmt) normalize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0x01 && r <= 0x08, r == 0x0B, r >= 0x0E && r <= 0x1F, r == 0x7F, r == 0x8F, r == 0x9F:
			return -1
		case r == 0x09, r == 0x0A, r == 0x0C, r == 0x0D, r == 0x1680, r >= 0x200B && r <= 0x200F,
			r == 0x2028, r == 0x2029, r == 0x2581, r == 0xFEFF, r == 0xFFFD:
			return ' '
		}
		return r
	}, s)
}

// normRegexReplace is the Replace normalizer with a regex pattern: every match is
// replaced by content.
type normRegexReplace struct {
	m       matcher
	content string
}

func (n normRegexReplace) normalize(s string) string { return replaceMatches(n.m, s, n.content) }

func replaceMatches(m matcher, s, content string) string {
	var b strings.Builder
	for _, sp := range m.findMatches(s, nil) {
		if sp.match {
			b.WriteString(content)
		} else {
			b.WriteString(s[sp.start:sp.end])
		}
	}
	return b.String()
}

// normByteLevel is the ByteLevel normalizer: every byte becomes its GPT-2 alphabet rune.
type normByteLevel struct{}

func (normByteLevel) normalize(s string) string { return string(appendByteLevel(nil, s)) }
