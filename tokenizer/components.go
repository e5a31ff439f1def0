package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Builders of the pipeline components from their tokenizer.json objects.

func parseNormalizer(raw json.RawMessage) (normalizer, error) {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, malformed("normalizer", err)
	}
	switch c.Type {
	case "Sequence":
		var q normSequence
		for _, sub := range c.Normalizers {
			n, err := parseNormalizer(sub)
			if err != nil {
				return nil, err
			}
			q = append(q, n)
		}
		return q, nil
	case "Prepend":
		return normPrepend(c.Prepend), nil
	case "Replace":
		if c.Pattern.String != nil && *c.Pattern.String != "" {
			return normReplace{*c.Pattern.String, c.Content}, nil
		}
		m, err := parsePattern("normalizer", "Replace", c.Pattern)
		if err != nil {
			return nil, err
		}
		return normRegexReplace{m, c.Content}, nil
	case "BertNormalizer":
		n := normBert{cleanText: c.CleanText == nil || *c.CleanText,
			chineseChars: c.HandleChineseChars == nil || *c.HandleChineseChars,
			lowercase:    c.Lowercase == nil || *c.Lowercase}
		n.stripAccents = n.lowercase
		if c.StripAccents != nil {
			n.stripAccents = *c.StripAccents
		}
		return n, nil
	case "Lowercase":
		return normLowercase{}, nil
	case "StripAccents":
		return normStripAccents{}, nil
	case "Nmt":
		return normNmt{}, nil
	case "ByteLevel":
		return normByteLevel{}, nil
	case "Precompiled":
		n, err := parsePrecompiled(c.PrecompiledCharsmap)
		if err != nil {
			return nil, malformed("normalizer", fmt.Errorf("Precompiled: %w", err))
		}
		return n, nil
	case "NFC":
		return normUnicode{norm.NFC}, nil
	case "NFD":
		return normUnicode{norm.NFD}, nil
	case "NFKC":
		return normUnicode{norm.NFKC}, nil
	case "NFKD":
		return normUnicode{norm.NFKD}, nil
	case "Strip":
		return normStrip{c.StripLeft, c.StripRight}, nil
	}
	return nil, unsupported("normalizer", "type %q", c.Type)
}

// metaspaceParams reads the replacement rune and the prepend scheme, accepting the older
// add_prefix_space spelling.
func metaspaceParams(c *component) (rune, prependScheme, error) {
	rep, size := utf8.DecodeRuneInString(c.Replacement)
	if c.Replacement == "" || size != len(c.Replacement) {
		return 0, 0, malformed("Metaspace", fmt.Errorf("replacement %q is not one character", c.Replacement))
	}
	scheme := prependAlways
	switch c.PrependScheme {
	case "", "always":
	case "first":
		scheme = prependFirst
	case "never":
		scheme = prependNever
	default:
		return 0, 0, unsupported("Metaspace", "prepend_scheme %q", c.PrependScheme)
	}
	if c.AddPrefixSpace != nil && !*c.AddPrefixSpace {
		scheme = prependNever
	}
	return rep, scheme, nil
}

func parseDecoder(raw json.RawMessage) (decoder, error) {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, malformed("decoder", err)
	}
	switch c.Type {
	case "Sequence":
		var q decSequence
		for _, sub := range c.Decoders {
			d, err := parseDecoder(sub)
			if err != nil {
				return nil, err
			}
			q = append(q, d)
		}
		return q, nil
	case "ByteLevel":
		return decByteLevel{}, nil
	case "Replace":
		if c.Pattern.String != nil && *c.Pattern.String != "" {
			return decReplace{*c.Pattern.String, c.Content}, nil
		}
		m, err := parsePattern("decoder", "Replace", c.Pattern)
		if err != nil {
			return nil, err
		}
		return decRegexReplace{m, c.Content}, nil
	case "WordPiece":
		d := decWordPiece{prefix: "##", cleanup: c.Cleanup == nil || *c.Cleanup}
		if c.Prefix != nil {
			d.prefix = *c.Prefix
		}
		return d, nil
	case "BPEDecoder":
		d := decBPE{suffix: "</w>"}
		if c.Suffix != nil {
			d.suffix = *c.Suffix
		}
		return d, nil
	case "ByteFallback":
		return decByteFallback{}, nil
	case "Fuse":
		return decFuse{}, nil
	case "Strip":
		r, size := utf8.DecodeRuneInString(c.Content)
		if c.Content == "" || size != len(c.Content) || c.Start < 0 || c.Stop < 0 {
			return nil, malformed("decoder", fmt.Errorf("Strip content %q start %d stop %d", c.Content, c.Start, c.Stop))
		}
		return decStrip{content: r, start: c.Start, stop: c.Stop}, nil
	case "Metaspace":
		rep, scheme, err := metaspaceParams(&c)
		if err != nil {
			return nil, err
		}
		return decMetaspace{replacement: rep, scheme: scheme}, nil
	}
	return nil, unsupported("decoder", "type %q", c.Type)
}

// parsePostProcessor reads TemplateProcessing, RobertaProcessing, BertProcessing,
// ByteLevel and Sequence post-processors.
func (t *Tokenizer) parsePostProcessor(raw json.RawMessage) (postProcessor, error) {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, malformed("post_processor", err)
	}
	switch c.Type {
	case "Sequence":
		var q postSequence
		for _, sub := range c.Processors {
			p, err := t.parsePostProcessor(sub)
			if err != nil {
				return nil, err
			}
			q = append(q, p)
		}
		return q, nil
	case "ByteLevel":
		return postNone{}, nil
	case "RobertaProcessing", "BertProcessing":
		cls, err := tokenPairID(c.Cls)
		if err != nil {
			return nil, malformed("post_processor", fmt.Errorf("%s cls: %w", c.Type, err))
		}
		sep, err := tokenPairID(c.Sep)
		if err != nil {
			return nil, malformed("post_processor", fmt.Errorf("%s sep: %w", c.Type, err))
		}
		return postTemplate{before: []int{cls}, after: []int{sep}}, nil
	case "TemplateProcessing":
		var p postTemplate
		seen := false
		for _, item := range c.Single {
			switch {
			case item.Sequence != nil:
				if seen || item.Sequence.ID != "A" {
					return nil, unsupported("post_processor", "TemplateProcessing single template with sequence %q", item.Sequence.ID)
				}
				seen = true
			case item.SpecialToken != nil:
				st, ok := c.SpecialTokens[item.SpecialToken.ID]
				if !ok {
					return nil, malformed("post_processor", fmt.Errorf("special token %q missing from special_tokens", item.SpecialToken.ID))
				}
				if seen {
					p.after = append(p.after, st.IDs...)
				} else {
					p.before = append(p.before, st.IDs...)
				}
			default:
				return nil, malformed("post_processor", errors.New("template item is neither SpecialToken nor Sequence"))
			}
		}
		if !seen {
			return nil, malformed("post_processor", errors.New("single template without $A"))
		}
		return p, nil
	}
	return nil, unsupported("post_processor", "type %q", c.Type)
}

// tokenPairID reads the id of a ["token", id] pair.
func tokenPairID(pair []json.RawMessage) (int, error) {
	if len(pair) != 2 {
		return 0, fmt.Errorf("want [token, id], got %d elements", len(pair))
	}
	var id int
	if err := json.Unmarshal(pair[1], &id); err != nil {
		return 0, err
	}
	return id, nil
}
