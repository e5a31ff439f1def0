package tokenizer

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/dlclark/regexp2"
)

// The reference compiles Split and Replace regexes with Oniguruma (Ruby syntax). Patterns
// this package has no scanner for run on regexp2, a backtracking engine with the same
// leftmost-first alternation, lookaround and Unicode classes. Where the two dialects read
// the same text differently, translateOnig rewrites the pattern first; constructs with no
// faithful translation are refused at load.

// Oniguruma's \w on UTF-8: Alphabetic, marks, numbers and connector punctuation
// (regexp2's \w lacks Mc, Me, Nl, No and the Other_Alphabetic symbols such as Ⓐ).
const onigWordClass = `\p{L}\p{M}\p{N}\p{Pc}\p{Other_Alphabetic}`

// Oniguruma's \b sees other word characters than its \w: numbers are Nd, Nl and only the
// Latin-1 No characters (² ³ ¹ ¼ ½ ¾), not ① or ፩.
const onigBoundaryWordClass = `\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\p{Other_Alphabetic}\x{B2}\x{B3}\x{B9}\x{BC}-\x{BE}`

// translateOnig rewrites an Oniguruma pattern into regexp2 syntax:
//   - \w, \W, \b and \B get Oniguruma's word characters, \h and \H (hex digits) are
//     spelled out;
//   - in a case-insensitive scope ((?i:...) or (?i)), every letter, in a class too, also
//     matches its whole simple case-folding orbit, as Oniguruma's folding does, and the i
//     flag is dropped (regexp2 compares lower-case forms instead: "'ſ" would miss (?i:'s)
//     and "İ" would match (?i:i)); Oniguruma's multi-character folds (ß and ss) are not
//     reproduced;
//   - the m flag (Ruby: dot matches newline) becomes .NET's s.
//
// Possessive quantifiers, nested classes and class intersections (&&) have no regexp2
// spelling here and are refused. ^ and $ match at line boundaries in Ruby syntax; the
// caller compiles with regexp2.Multiline for that.
func translateOnig(p string) (string, error) {
	rs := []rune(p)
	var b strings.Builder
	fold := []bool{false} // case-insensitivity per open group
	inClass := false
	afterQuant, counted := false, false // the previous token was a quantifier, a {n,m} one
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		ci := fold[len(fold)-1]
		quant := false
		switch {
		case c == '\\':
			if i+1 >= len(rs) {
				return "", fmt.Errorf("trailing backslash")
			}
			i++
			if err := translateEscape(&b, rs, &i, inClass); err != nil {
				return "", err
			}
		case inClass:
			switch {
			case c == ']':
				inClass = false
				b.WriteRune(c)
			case c == '[':
				return "", fmt.Errorf("nested character class")
			case c == '&' && i+1 < len(rs) && rs[i+1] == '&':
				return "", fmt.Errorf("character class intersection (&&)")
			case i+2 < len(rs) && rs[i+1] == '-' && rs[i+2] != ']' && rs[i+2] != '\\':
				lo, hi := c, rs[i+2]
				b.WriteString(string(lo) + "-" + string(hi))
				if ci && hi-lo < 0x3000 {
					for r := lo; r <= hi; r++ {
						for _, f := range foldOrbit(r) {
							if f < lo || f > hi {
								b.WriteRune(f)
							}
						}
					}
				}
				i += 2
			default:
				b.WriteRune(c)
				if ci {
					b.WriteString(foldOrbit(c))
				}
			}
		case c == '[':
			inClass = true
			b.WriteRune(c)
			if i+1 < len(rs) && rs[i+1] == '^' {
				i++
				b.WriteRune('^')
			}
			if i+1 < len(rs) && rs[i+1] == ']' { // a leading ] is literal
				i++
				b.WriteString(`\]`)
			}
		case c == '(':
			flags, end, ok := groupFlags(rs[i+1:])
			if !ok {
				fold = append(fold, ci)
				b.WriteRune(c)
				break
			}
			on, set := ci, true
			for _, f := range flags {
				switch f {
				case '-':
					set = false
				case 'i':
					on = set
				}
			}
			// Case folding is done by the orbits, so the i flag itself is dropped: regexp2
			// would compare lower-case forms, which matches "İ" to (?i)i where Oniguruma
			// does not.
			kept := strings.NewReplacer("-i", "-", "i", "", "m", "s").Replace(flags)
			kept = strings.TrimSuffix(kept, "-")
			i += 1 + len([]rune(flags)) + 1 // now at the ':' or ')'
			if end == ')' {                 // (?i): the flag holds to the end of the enclosing group
				fold[len(fold)-1] = on
				if kept != "" {
					b.WriteString("(?" + kept + ")")
				}
				break
			}
			fold = append(fold, on)
			b.WriteString("(?" + kept + ":")
		case c == ')':
			if len(fold) > 1 {
				fold = fold[:len(fold)-1]
			}
			b.WriteRune(c)
		case c == '{' && quantifierEnd(rs, i) > i:
			end := quantifierEnd(rs, i)
			q := string(rs[i : end+1])
			if strings.HasPrefix(q, "{,") { // Ruby's {,m}; .NET would read it literally
				q = "{0," + q[2:]
			}
			b.WriteString(q)
			i = end
			quant = true
			counted = true
		case c == '*' || c == '+' || c == '?':
			if afterQuant && c == '+' && counted {
				// Ruby reads {n,m}+ as a repeated repetition; .NET refuses it.
				return "", fmt.Errorf("quantifier after a counted repetition ({n,m}+)")
			}
			if afterQuant && c == '+' {
				return "", fmt.Errorf("possessive quantifier")
			}
			counted = false
			quant = c != '?' || !afterQuant // a ? after a quantifier makes it lazy
			b.WriteRune(c)
		case ci && unicode.IsLetter(c):
			b.WriteString("[" + string(c) + foldOrbit(c) + "]")
		default:
			b.WriteRune(c)
		}
		afterQuant = quant
	}
	if inClass {
		return "", fmt.Errorf("unterminated character class")
	}
	return b.String(), nil
}

// translateEscape writes the regexp2 form of the escape whose letter is rs[*i], advancing
// *i past what it consumed.
func translateEscape(b *strings.Builder, rs []rune, i *int, inClass bool) error {
	n := rs[*i]
	switch {
	case n == 'w' || n == 'h' || n == 'W' || n == 'H':
		body := onigWordClass
		if n == 'h' || n == 'H' {
			body = "0-9a-fA-F"
		}
		switch {
		case inClass && (n == 'W' || n == 'H'):
			return fmt.Errorf(`\%c inside a character class`, n)
		case inClass:
			b.WriteString(body)
		case n == 'W' || n == 'H':
			b.WriteString("[^" + body + "]")
		default:
			b.WriteString("[" + body + "]")
		}
	case (n == 'b' || n == 'B') && !inClass:
		// Word boundaries, with the word characters Oniguruma's \b uses (regexp2's
		// differ).
		w := "[" + onigBoundaryWordClass + "]"
		if n == 'b' {
			b.WriteString("(?:(?<=" + w + ")(?!" + w + ")|(?<!" + w + ")(?=" + w + "))")
		} else {
			b.WriteString("(?:(?<=" + w + ")(?=" + w + ")|(?<!" + w + ")(?!" + w + "))")
		}
	case (n == 'p' || n == 'P' || n == 'x') && *i+1 < len(rs) && rs[*i+1] == '{':
		end := *i + 1
		for end < len(rs) && rs[end] != '}' {
			end++
		}
		if end == len(rs) {
			return fmt.Errorf(`unterminated \%c{`, n)
		}
		b.WriteString(`\` + string(rs[*i:end+1]))
		*i = end
	default:
		b.WriteRune('\\')
		b.WriteRune(n)
	}
	return nil
}

// quantifierEnd returns the index of the '}' closing the counted repetition {n}, {n,},
// {n,m} or {,m} that starts at rs[i], or -1 when the brace is a literal.
func quantifierEnd(rs []rune, i int) int {
	digits, comma := 0, false
	for j := i + 1; j < len(rs); j++ {
		switch r := rs[j]; {
		case r >= '0' && r <= '9':
			digits++
		case r == ',' && !comma:
			comma = true
		case r == '}' && digits > 0:
			return j
		default:
			return -1
		}
	}
	return -1
}

// groupFlags reads the flags of a group opening "(?imx-imx:" or "(?imx-imx)" from rs
// (which starts after the parenthesis). It returns the flag letters, the rune that ends
// them (':' or ')') and false for any other group.
func groupFlags(rs []rune) (string, rune, bool) {
	if len(rs) < 2 || rs[0] != '?' {
		return "", 0, false
	}
	for k := 1; k < len(rs); k++ {
		switch r := rs[k]; {
		case r == ':' || r == ')':
			if k == 1 {
				return "", 0, false // "(?:" is a plain non-capturing group
			}
			return string(rs[1:k]), r, true
		case !strings.ContainsRune("imx-", r):
			return "", 0, false
		}
	}
	return "", 0, false
}

// foldOrbit returns the other members of r's simple case-folding orbit.
func foldOrbit(r rune) string {
	var b strings.Builder
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		b.WriteRune(f)
	}
	return b.String()
}

// regexMatcher runs a compiled pattern over a piece of text the way the reference's
// Oniguruma iterator does: leftmost-first matches, searched again from the end of each
// one, an empty match right where the previous match ended being skipped by one character.
type regexMatcher struct {
	re *regexp2.Regexp
}

// compileRegex translates and compiles an Oniguruma pattern from tokenizer.json.
func compileRegex(pattern string) (regexMatcher, error) {
	translated, err := translateOnig(pattern)
	if err != nil {
		return regexMatcher{}, err
	}
	re, err := regexp2.Compile(translated, regexp2.Multiline)
	if err != nil {
		return regexMatcher{}, err
	}
	return regexMatcher{re}, nil
}

func (m regexMatcher) findMatches(s string, out []span) []span {
	if s == "" { // the reference reports no match in an empty text, not even an empty one
		return out
	}
	runes := []rune(s)
	offs := make([]int, len(runes)+1) // byte offset of every rune index
	k := 0
	for i := range s {
		offs[k] = i
		k++
	}
	offs[len(runes)] = len(s)
	prev, lastEnd, lastMatchEnd := 0, 0, -1
	for lastEnd <= len(runes) {
		mt, err := m.re.FindRunesMatchStartingAt(runes, lastEnd)
		if err != nil || mt == nil { // err: only a match timeout, which is never set
			break
		}
		start, end := mt.Index, mt.Index+mt.Length
		if start == end && lastEnd == lastMatchEnd {
			lastEnd++
			continue
		}
		lastEnd, lastMatchEnd = end, end
		if prev < start {
			out = append(out, span{offs[prev], offs[start], false})
		}
		out = append(out, span{offs[start], offs[end], true})
		prev = end
	}
	if prev < len(runes) {
		out = append(out, span{offs[prev], len(s), false})
	}
	return out
}
