package tokenizer

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// parsePreTokenizer builds a pre-tokenizer from its tokenizer.json object.
func parsePreTokenizer(raw json.RawMessage) (preTokenizer, error) {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, malformed("pre_tokenizer", err)
	}
	switch c.Type {
	case "Sequence":
		var q preSequence
		for _, sub := range c.PreTokenizers {
			p, err := parsePreTokenizer(sub)
			if err != nil {
				return nil, err
			}
			q = append(q, p)
		}
		return q, nil
	case "ByteLevel":
		return preByteLevel{
			addPrefixSpace: c.AddPrefixSpace == nil || *c.AddPrefixSpace,
			useRegex:       c.UseRegex == nil || *c.UseRegex,
		}, nil
	case "Split":
		return parseSplit(&c)
	case "Metaspace":
		rep, scheme, err := metaspaceParams(&c)
		if err != nil {
			return nil, err
		}
		return preMetaspace{replacement: rep, scheme: scheme, split: c.Split == nil || *c.Split}, nil
	case "Whitespace":
		return preSplit{m: wordRunMatcher{}, behavior: behRemoved, invert: true}, nil
	case "WhitespaceSplit":
		return preSplit{m: runeMatcher(isSpace), behavior: behRemoved}, nil
	case "BertPreTokenizer":
		return preSequence{
			preSplit{m: runeMatcher(isSpace), behavior: behRemoved},
			preSplit{m: runeMatcher(isPunctuation), behavior: behIsolated},
		}, nil
	case "Punctuation":
		b := behIsolated
		if c.Behavior != "" {
			var ok bool
			if b, ok = behaviorNames[c.Behavior]; !ok {
				return nil, malformed("pre_tokenizer", fmt.Errorf("Punctuation behavior %q", c.Behavior))
			}
		}
		return preSplit{m: runeMatcher(isPunctuation), behavior: b}, nil
	case "Digits":
		if c.IndividualDigits {
			return preSplit{m: runeMatcher(unicode.IsNumber), behavior: behIsolated}, nil
		}
		return preSplit{m: runeMatcher(unicode.IsNumber), behavior: behContiguous}, nil
	case "CharDelimiterSplit":
		d, size := utf8.DecodeRuneInString(c.Delimiter)
		if c.Delimiter == "" || size != len(c.Delimiter) {
			return nil, malformed("pre_tokenizer", fmt.Errorf("CharDelimiterSplit delimiter %q is not one character", c.Delimiter))
		}
		return preSplit{m: runeMatcher(func(r rune) bool { return r == d }), behavior: behRemoved}, nil
	}
	return nil, unsupported("pre_tokenizer", "type %q", c.Type)
}

// parseSplit reads a Split pre-tokenizer. A regex with a hand-written scanner (GPT-2,
// Llama 3, Qwen2) uses it; any other regex is translated for regexp2; a String pattern
// matches literally.
func parseSplit(c *component) (preTokenizer, error) {
	b, ok := behaviorNames[c.Behavior]
	if !ok {
		return nil, malformed("pre_tokenizer", fmt.Errorf("Split behavior %q (want Isolated, Removed, MergedWithPrevious, MergedWithNext or Contiguous)", c.Behavior))
	}
	m, err := parsePattern("pre_tokenizer", "Split", c.Pattern)
	if err != nil {
		return nil, err
	}
	return preSplit{m: m, behavior: b, invert: c.Invert}, nil
}

// parsePattern builds the matcher of a {"String": ...} or {"Regex": ...} pattern of the
// component kind (for errors).
func parsePattern(kind, typ string, p pattern) (matcher, error) {
	switch {
	case p.Regex != nil:
		if sp, ok := lookupPattern(*p.Regex); ok {
			return sp, nil
		}
		re, err := compileRegex(*p.Regex)
		if err != nil {
			return nil, unsupported(kind, "%s regex %q: %v", typ, *p.Regex, err)
		}
		return re, nil
	case p.String != nil && *p.String != "":
		return literalMatcher(*p.String), nil
	case p.String != nil: // the reference compiles "" as an empty regex
		re, err := compileRegex("")
		if err != nil {
			return nil, unsupported(kind, "%s empty pattern: %v", typ, err)
		}
		return re, nil
	}
	return nil, malformed(kind, fmt.Errorf("%s pattern is neither String nor Regex", typ))
}

// isPunctuation is the reference's punctuation test for BERT and the Punctuation
// pre-tokenizer: ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~) or
// a Unicode punctuation category (Pc, Pd, Ps, Pe, Pi, Pf, Po).
func isPunctuation(r rune) bool {
	if r < utf8.RuneSelf {
		return r > ' ' && r < 0x7F && !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}
	return unicode.IsPunct(r)
}
