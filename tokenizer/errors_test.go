package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeVariant writes testdata/<family>/tokenizer.json with edit applied to its decoded
// JSON into a temporary directory and returns the new path.
func writeVariant(t *testing.T, family string, edit func(m map[string]any)) string {
	t.Helper()
	dir := filepath.Join("testdata", family)
	if _, err := os.Stat(dir); err != nil {
		dir = filepath.Join("testdata", "hf", family)
	}
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// splitVariant returns a path maker for the llama3 file with its Split pre-tokenizer's
// regex and behaviour replaced.
func splitVariant(regex, behavior string) func(t *testing.T) string {
	return func(t *testing.T) string {
		return writeVariant(t, "llama3", func(m map[string]any) {
			pre := m["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)
			pre["pattern"] = map[string]any{"Regex": regex}
			pre["behavior"] = behavior
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadErrors(t *testing.T) {
	model := func(m map[string]any) map[string]any { return m["model"].(map[string]any) }
	cases := []struct {
		name  string
		path  func(t *testing.T) string
		is    error
		words []string // the message must name these
	}{
		{"missing file", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.json") },
			ErrNotFound, []string{"nope.json"}},
		{"not JSON", func(t *testing.T) string { return writeFile(t, "tokenizer.json", "{\"model\": ") },
			ErrMalformed, []string{"tokenizer.json"}},
		{"JSON of the wrong shape", func(t *testing.T) string { return writeFile(t, "tokenizer.json", "[1, 2]") },
			ErrMalformed, nil},
		{"no model", func(t *testing.T) string { return writeFile(t, "tokenizer.json", "{}") },
			ErrMalformed, []string{"model"}},
		{"unknown model type", func(t *testing.T) string {
			return writeVariant(t, "gpt2", func(m map[string]any) { model(m)["type"] = "CharLevel" })
		}, ErrUnsupported, []string{"model", "CharLevel"}},
		{"unigram vocab as a map", func(t *testing.T) string {
			return writeVariant(t, "gpt2", func(m map[string]any) { model(m)["type"] = "Unigram" })
		}, ErrMalformed, []string{"model", "Unigram vocab"}},
		{"unigram unk_id outside the vocabulary", func(t *testing.T) string {
			return writeVariant(t, "t5-unigram", func(m map[string]any) { model(m)["unk_id"] = 1 << 20 })
		}, ErrMalformed, []string{"unk_id 1048576"}},
		{"wordpiece vocab as a list", func(t *testing.T) string {
			return writeVariant(t, "bert-cased", func(m map[string]any) { model(m)["vocab"] = []any{"a", "b"} })
		}, ErrMalformed, []string{"model", "WordPiece vocab"}},
		{"vocab of the wrong type", func(t *testing.T) string {
			return writeVariant(t, "gpt2", func(m map[string]any) { model(m)["vocab"] = []int{1, 2} })
		}, ErrMalformed, []string{"model"}},
		{"merge outside the vocabulary", func(t *testing.T) string {
			return writeVariant(t, "gpt2", func(m map[string]any) { model(m)["merges"] = []string{"a zzzz"} })
		}, ErrMalformed, []string{"merge 0", "zzzz"}},
		{"merge with three parts", func(t *testing.T) string {
			return writeVariant(t, "gpt2", func(m map[string]any) { model(m)["merges"] = []string{"a b c"} })
		}, ErrMalformed, []string{"merge 0"}},
		{"Split regex with a possessive quantifier", splitVariant(`\p{L}++|\s`, "Isolated"),
			ErrUnsupported, []string{"pre_tokenizer", `\\p{L}++|\\s`, "possessive"}},
		{"Split regex with a class intersection", splitVariant(`[a-z&&[^aeiou]]+`, "Isolated"),
			ErrUnsupported, []string{"pre_tokenizer", "intersection"}},
		{"Split regex that does not compile", splitVariant(`(\p{L}+`, "Isolated"),
			ErrUnsupported, []string{"pre_tokenizer", `(\\p{L}+`}},
		{"Split regex with an unknown property", splitVariant(`\p{Nonsense}`, "Isolated"),
			ErrUnsupported, []string{"pre_tokenizer", "Nonsense"}},
		{"Split behavior unknown", splitVariant(`\s+`, "Sideways"),
			ErrMalformed, []string{"pre_tokenizer", "Sideways"}},
		{"unknown pre-tokenizer", func(t *testing.T) string {
			return writeVariant(t, "gpt2", func(m map[string]any) { m["pre_tokenizer"] = map[string]any{"type": "UnicodeScripts"} })
		}, ErrUnsupported, []string{"pre_tokenizer", "UnicodeScripts"}},
		{"Precompiled charsmap too short", func(t *testing.T) string {
			return writeVariant(t, "t5-unigram", func(m map[string]any) {
				m["normalizer"] = map[string]any{"type": "Precompiled", "precompiled_charsmap": "AAA="}
			})
		}, ErrMalformed, []string{"normalizer", "Precompiled", "header"}},
		{"Precompiled trie larger than the charsmap", func(t *testing.T) string {
			return writeVariant(t, "t5-unigram", func(m map[string]any) {
				m["normalizer"] = map[string]any{"type": "Precompiled", "precompiled_charsmap": "AAEAAAAAAAA="}
			})
		}, ErrMalformed, []string{"normalizer", "trie size 256"}},
		{"Precompiled charsmap not base64", func(t *testing.T) string {
			return writeVariant(t, "t5-unigram", func(m map[string]any) {
				m["normalizer"] = map[string]any{"type": "Precompiled", "precompiled_charsmap": "%%%"}
			})
		}, ErrMalformed, []string{"normalizer", "base64"}},
		{"unknown normalizer", func(t *testing.T) string {
			return writeVariant(t, "gpt2", func(m map[string]any) { m["normalizer"] = map[string]any{"type": "Uppercase"} })
		}, ErrUnsupported, []string{"normalizer", "Uppercase"}},
		{"unknown decoder", func(t *testing.T) string {
			return writeVariant(t, "gpt2", func(m map[string]any) { m["decoder"] = map[string]any{"type": "CTC"} })
		}, ErrUnsupported, []string{"decoder", "CTC"}},
		{"template with unknown special token", func(t *testing.T) string {
			return writeVariant(t, "llama2", func(m map[string]any) {
				m["post_processor"].(map[string]any)["special_tokens"] = map[string]any{}
			})
		}, ErrMalformed, []string{"post_processor", "<s>"}},
		{"post-processor id outside the vocabulary", func(t *testing.T) string {
			return writeVariant(t, "roberta", func(m map[string]any) {
				m["post_processor"].(map[string]any)["sep"] = []any{"</s>", 99999}
			})
		}, ErrMalformed, []string{"post_processor", "99999"}},
		{"BPE dropout", func(t *testing.T) string {
			return writeVariant(t, "gpt2", func(m map[string]any) { model(m)["dropout"] = 0.1 })
		}, ErrUnsupported, []string{"dropout"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path(t)
			tok, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded: %v", tok)
			}
			if !errors.Is(err, c.is) {
				t.Errorf("error %q does not wrap %v", err, c.is)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			for _, w := range c.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for name, cfg := range map[string]string{
		"malformed":          `{"bos_token": `,
		"unknown bos token":  `{"bos_token": "<nope>"}`,
		"bos of wrong shape": `{"bos_token": 7}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := writeVariant(t, "gpt2", func(map[string]any) {})
			if err := os.WriteFile(filepath.Join(filepath.Dir(path), "tokenizer_config.json"), []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "tokenizer_config.json") {
				t.Errorf("err = %v, want ErrMalformed naming tokenizer_config.json", err)
			}
		})
	}
}

// A model whose unknown token is missing from the vocabulary loads, and only text that
// needs the unknown token fails to encode, as in the reference.
func TestMissingUnknownTokenFailsOnlyWhenNeeded(t *testing.T) {
	path := writeVariant(t, "metaspace", func(m map[string]any) {
		m["model"].(map[string]any)["unk_token"] = "<missing>"
	})
	tok, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Encode("the dog", false); err != nil {
		t.Errorf("known characters: %v", err)
	}
	if _, err := tok.Encode("the 😀", false); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "<missing>") {
		t.Errorf("unknown character: err = %v", err)
	}
}

// WordPiece, WordLevel and Unigram models without a usable unknown token load, and only
// text that needs it fails, with an error naming the model.
func TestMissingUnknownTokenOtherModels(t *testing.T) {
	cases := []struct {
		family, known, unknown, words string
		edit                          func(m map[string]any)
	}{
		{"bert-cased", "the", "the ☃", "WordPiece", func(m map[string]any) { m["model"].(map[string]any)["unk_token"] = "<missing>" }},
		{"wordlevel-digits", "the", "zzzz", "WordLevel", func(m map[string]any) { m["model"].(map[string]any)["unk_token"] = "<missing>" }},
		{"t5-unigram", "the", "the ☃", "Unigram", func(m map[string]any) { delete(m["model"].(map[string]any), "unk_id") }},
	}
	for _, c := range cases {
		tok, err := Load(writeVariant(t, c.family, c.edit))
		if err != nil {
			t.Fatalf("%s: %v", c.family, err)
		}
		if _, err := tok.Encode(c.known, false); err != nil {
			t.Errorf("%s: known text: %v", c.family, err)
		}
		if _, err := tok.Encode(c.unknown, false); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.words) {
			t.Errorf("%s: unknown text: err = %v", c.family, err)
		}
	}
}
