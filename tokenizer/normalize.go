package tokenizer

import (
	"strings"

	"golang.org/x/text/unicode/norm"
)

// normalizer rewrites a piece of input text before pre-tokenization.
type normalizer interface {
	normalize(s string) string
}

type normSequence []normalizer

func (q normSequence) normalize(s string) string {
	for _, n := range q {
		s = n.normalize(s)
	}
	return s
}

// normPrepend prepends its text to non-empty input (Llama 2's "▁").
type normPrepend string

func (p normPrepend) normalize(s string) string {
	if s == "" {
		return s
	}
	return string(p) + s
}

// normReplace replaces every occurrence of a literal string.
type normReplace struct{ old, new string }

func (r normReplace) normalize(s string) string { return strings.ReplaceAll(s, r.old, r.new) }

// normUnicode applies a Unicode normalization form (NFC for Qwen2).
type normUnicode struct{ form norm.Form }

func (u normUnicode) normalize(s string) string { return u.form.String(s) }

// normStrip removes leading and/or trailing white space.
type normStrip struct{ left, right bool }

func (n normStrip) normalize(s string) string {
	if n.left {
		s = s[trailingSpaceLen(s):]
	}
	if n.right {
		s = s[:leadingSpaceStart(s)]
	}
	return s
}
