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
	t := &onigTranslator{rs: []rune(p), fold: []bool{false}}
	for t.i = 0; t.i < len(t.rs); t.i++ {
		quant, err := t.token()
		if err != nil {
			return "", err
		}
		t.afterQuant = quant
	}
	if t.inClass {
		return "", fmt.Errorf("unterminated character class")
	}
	return t.b.String(), nil
}

// onigTranslator is translateOnig's state: the pattern, the position, the output, and
// what the tokens so far have opened.
type onigTranslator struct {
	rs                  []rune
	i                   int
	b                   strings.Builder
	fold                []bool // case-insensitivity per open group
	inClass             bool
	afterQuant, counted bool // the previous token was a quantifier, a {n,m} one
}

// ci reports whether the innermost open group is case-insensitive.
func (t *onigTranslator) ci() bool { return t.fold[len(t.fold)-1] }

// token translates the token at t.i (advancing t.i to its last rune) and reports
// whether it was a quantifier.
func (t *onigTranslator) token() (bool, error) {
	c, rs := t.rs[t.i], t.rs
	switch {
	case c == '\\':
		if t.i+1 >= len(rs) {
			return false, fmt.Errorf("trailing backslash")
		}
		t.i++
		return false, translateEscape(&t.b, rs, &t.i, t.inClass)
	case t.inClass:
		return false, t.classRune(c)
	case c == '[':
		t.openClass()
	case c == '(':
		t.openGroup()
	case c == ')':
		if len(t.fold) > 1 {
			t.fold = t.fold[:len(t.fold)-1]
		}
		t.b.WriteRune(c)
	case c == '{' && quantifierEnd(rs, t.i) > t.i:
		end := quantifierEnd(rs, t.i)
		q := string(rs[t.i : end+1])
		if strings.HasPrefix(q, "{,") { // Ruby's {,m}; .NET would read it literally
			q = "{0," + q[2:]
		}
		t.b.WriteString(q)
		t.i = end
		t.counted = true
		return true, nil
	case c == '*' || c == '+' || c == '?':
		return t.quantifier(c)
	case t.ci() && unicode.IsLetter(c):
		t.b.WriteString("[" + string(c) + foldOrbit(c) + "]")
	default:
		t.b.WriteRune(c)
	}
	return false, nil
}

// classRune translates c inside a character class: its end, a range (with the folding
// orbits of its letters in a case-insensitive scope) or one character.
func (t *onigTranslator) classRune(c rune) error {
	rs, i := t.rs, t.i
	switch {
	case c == ']':
		t.inClass = false
		t.b.WriteRune(c)
	case c == '[':
		return fmt.Errorf("nested character class")
	case c == '&' && i+1 < len(rs) && rs[i+1] == '&':
		return fmt.Errorf("character class intersection (&&)")
	case i+2 < len(rs) && rs[i+1] == '-' && rs[i+2] != ']' && rs[i+2] != '\\':
		lo, hi := c, rs[i+2]
		t.b.WriteString(string(lo) + "-" + string(hi))
		if t.ci() && hi-lo < 0x3000 {
			for r := lo; r <= hi; r++ {
				for _, f := range foldOrbit(r) {
					if f < lo || f > hi {
						t.b.WriteRune(f)
					}
				}
			}
		}
		t.i += 2
	default:
		t.b.WriteRune(c)
		if t.ci() {
			t.b.WriteString(foldOrbit(c))
		}
	}
	return nil
}

// openClass starts a character class: a leading ^ negates it, a leading ] is literal.
func (t *onigTranslator) openClass() {
	rs := t.rs
	t.inClass = true
	t.b.WriteRune('[')
	if t.i+1 < len(rs) && rs[t.i+1] == '^' {
		t.i++
		t.b.WriteRune('^')
	}
	if t.i+1 < len(rs) && rs[t.i+1] == ']' {
		t.i++
		t.b.WriteString(`\]`)
	}
}

// openGroup starts a group, or applies a flag group (?flags) or (?flags:...): the i flag
// becomes folding orbits, m becomes .NET's s.
func (t *onigTranslator) openGroup() {
	ci := t.ci()
	flags, end, ok := groupFlags(t.rs[t.i+1:])
	if !ok {
		t.fold = append(t.fold, ci)
		t.b.WriteRune('(')
		return
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
	t.i += 1 + len([]rune(flags)) + 1 // now at the ':' or ')'
	if end == ')' {                   // (?i): the flag holds to the end of the enclosing group
		t.fold[len(t.fold)-1] = on
		if kept != "" {
			t.b.WriteString("(?" + kept + ")")
		}
		return
	}
	t.fold = append(t.fold, on)
	t.b.WriteString("(?" + kept + ":")
}

// quantifier translates *, + or ?, refusing what regexp2 cannot spell.
func (t *onigTranslator) quantifier(c rune) (bool, error) {
	if t.afterQuant && c == '+' && t.counted {
		// Ruby reads {n,m}+ as a repeated repetition; .NET refuses it.
		return false, fmt.Errorf("quantifier after a counted repetition ({n,m}+)")
	}
	if t.afterQuant && c == '+' {
		return false, fmt.Errorf("possessive quantifier")
	}
	t.counted = false
	t.b.WriteRune(c)
	return c != '?' || !t.afterQuant, nil // a ? after a quantifier makes it lazy
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
