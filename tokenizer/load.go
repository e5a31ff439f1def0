package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// fileJSON is the top level of a tokenizer.json.
type fileJSON struct {
	Version    string `json:"version"`
	Truncation *struct {
		MaxLength int    `json:"max_length"`
		Direction string `json:"direction"`
	} `json:"truncation"`
	AddedTokens []struct {
		ID         int    `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	Model         json.RawMessage `json:"model"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
}

// component is what every normalizer, pre-tokenizer, decoder and post-processor object
// shares: its type and, depending on the type, some of these fields.
type component struct {
	Type string `json:"type"`

	Normalizers   []json.RawMessage `json:"normalizers"`
	PreTokenizers []json.RawMessage `json:"pretokenizers"`
	Decoders      []json.RawMessage `json:"decoders"`
	Processors    []json.RawMessage `json:"processors"`

	Prepend        string  `json:"prepend"`
	Pattern        pattern `json:"pattern"`
	Content        string  `json:"content"`
	StripLeft      bool    `json:"strip_left"`
	StripRight     bool    `json:"strip_right"`
	Behavior       string  `json:"behavior"`
	Invert         bool    `json:"invert"`
	AddPrefixSpace *bool   `json:"add_prefix_space"`
	UseRegex       *bool   `json:"use_regex"`
	Replacement    string  `json:"replacement"`
	PrependScheme  string  `json:"prepend_scheme"`
	Split          *bool   `json:"split"`
	Start          int     `json:"start"`
	Stop           int     `json:"stop"`

	IndividualDigits   bool    `json:"individual_digits"`
	Delimiter          string  `json:"delimiter"`
	CleanText          *bool   `json:"clean_text"`
	HandleChineseChars *bool   `json:"handle_chinese_chars"`
	StripAccents       *bool   `json:"strip_accents"`
	Lowercase          *bool   `json:"lowercase"`
	Prefix             *string `json:"prefix"`
	Suffix             *string `json:"suffix"`
	Cleanup            *bool   `json:"cleanup"`

	PrecompiledCharsmap string `json:"precompiled_charsmap"`

	Single        []templateItem `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
	Sep []json.RawMessage `json:"sep"`
	Cls []json.RawMessage `json:"cls"`
}

type pattern struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type templateItem struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

// Load reads a Hugging Face tokenizer.json and, when one sits next to it,
// tokenizer_config.json (for the BOS, EOS and PAD tokens and the chat template).
// Errors name the file and the component at fault and wrap ErrNotFound, ErrMalformed or
// ErrUnsupported.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: load: %w", err)
	}
	t, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w (loading %s)", err, path)
	}
	cfgPath := filepath.Join(filepath.Dir(path), "tokenizer_config.json")
	if err := t.loadConfig(cfgPath); err != nil {
		return nil, fmt.Errorf("%w (loading %s)", err, cfgPath)
	}
	return t, nil
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || bytes.Equal(raw, []byte("null"))
}

func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
}

func unsupported(what, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrUnsupported, what, fmt.Sprintf(format, args...))
}

// parse builds a Tokenizer from the contents of a tokenizer.json.
func parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, malformed("tokenizer.json", err)
	}
	if f.Version != "" && f.Version != "1.0" {
		return nil, unsupported("version", "%q (want 1.0)", f.Version)
	}
	t := &Tokenizer{bos: -1, eos: -1, pad: -1}
	var err error
	if t.model, err = parseModel(f.Model); err != nil {
		return nil, err
	}
	if !isNull(f.Normalizer) {
		if t.normalizer, err = parseNormalizer(f.Normalizer); err != nil {
			return nil, err
		}
	}
	if !isNull(f.PreTokenizer) {
		if t.pre, err = parsePreTokenizer(f.PreTokenizer); err != nil {
			return nil, err
		}
	}
	if !isNull(f.Decoder) {
		if t.decoder, err = parseDecoder(f.Decoder); err != nil {
			return nil, err
		}
	}
	if err := t.buildVocab(&f); err != nil {
		return nil, err
	}
	if !isNull(f.PostProcessor) {
		if t.post, err = t.parsePostProcessor(f.PostProcessor); err != nil {
			return nil, err
		}
		for _, id := range t.post.process(nil) {
			if _, ok := t.Token(id); !ok {
				return nil, malformed("post_processor", fmt.Errorf("special token id %d is not in the vocabulary", id))
			}
		}
	}
	if tr := f.Truncation; tr != nil {
		if tr.MaxLength < 0 {
			return nil, malformed("truncation", fmt.Errorf("max_length %d", tr.MaxLength))
		}
		switch tr.Direction {
		case "", "Right":
		case "Left":
			t.truncLeft = true
		default:
			return nil, unsupported("truncation", "direction %q", tr.Direction)
		}
		t.maxLen = tr.MaxLength
	}
	return t, nil
}
