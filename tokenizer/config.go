package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// configJSON holds the fields of tokenizer_config.json this package reads.
type configJSON struct {
	BOSToken     json.RawMessage `json:"bos_token"`
	EOSToken     json.RawMessage `json:"eos_token"`
	PADToken     json.RawMessage `json:"pad_token"`
	ChatTemplate json.RawMessage `json:"chat_template"`
}

// loadConfig reads the special tokens and the chat template from path; a missing file is
// not an error, a token that is not in the vocabulary is.
func (t *Tokenizer) loadConfig(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tokenizer: load: %w", err)
	}
	var c configJSON
	if err := json.Unmarshal(data, &c); err != nil {
		return malformed("tokenizer_config.json", err)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *int
	}{{"bos_token", c.BOSToken, &t.bos}, {"eos_token", c.EOSToken, &t.eos}, {"pad_token", c.PADToken, &t.pad}} {
		content, err := tokenContent(f.raw)
		if err != nil {
			return malformed(f.name, err)
		}
		if content == "" {
			continue
		}
		id, ok := t.TokenID(content)
		if !ok {
			return malformed(f.name, fmt.Errorf("%q is not in the vocabulary", content))
		}
		*f.dst = id
	}
	if t.chatTemplate, err = chatTemplateText(c.ChatTemplate); err != nil {
		return malformed("chat_template", err)
	}
	return nil
}

// tokenContent reads a token given as "text", as {"content": "text", ...}, or as null.
func tokenContent(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", err
	}
	return obj.Content, nil
}

// chatTemplateText reads a chat template given as a string or as a list of named
// templates, of which it keeps the one named "default" (else the first).
func chatTemplateText(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var list []struct {
		Name     string `json:"name"`
		Template string `json:"template"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", err
	}
	for _, e := range list {
		if e.Name == "default" {
			return e.Template, nil
		}
	}
	if len(list) > 0 {
		return list[0].Template, nil
	}
	return "", nil
}
