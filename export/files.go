package export

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/lrtrain/lrtrain/model"
)

// TokenizerFiles are the files of a Hugging Face model directory that Merged copies
// from the base model when present: tokenizer, chat template and generation config.
var TokenizerFiles = []string{
	"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
	"tokenizer.model", "vocab.json", "merges.txt", "vocab.txt", "added_tokens.json",
	"chat_template.json", "chat_template.jinja", "generation_config.json",
}

// copyModelFiles copies the TokenizerFiles that exist in base into dir and returns
// their names.
func copyModelFiles(base, dir string) ([]string, error) {
	var copied []string
	for _, name := range TokenizerFiles {
		src := filepath.Join(base, name)
		st, err := os.Stat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		if err := copyFileSync(src, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		copied = append(copied, name)
	}
	return copied, nil
}

// configJSON is the base model's config.json with torch_dtype set to torchDType and,
// when the model was loaded with another number of labels than the file has,
// id2label/label2id rewritten for the new labels. Keys are sorted and indented as
// transformers writes them; numbers keep their spelling.
func configJSON(cfg *model.Config, torchDType string) ([]byte, error) {
	if len(cfg.Raw) == 0 {
		return nil, fmt.Errorf("%w: the model's config was not read from a file", ErrConfig)
	}
	dec := json.NewDecoder(bytes.NewReader(cfg.Raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, cfg.Path, err)
	}
	obj["torch_dtype"] = torchDType
	if cfg.ID2Label == nil && isClassifier(cfg) {
		if id2, ok := obj["id2label"].(map[string]any); !ok || len(id2) != cfg.NumLabels {
			id2label, label2id := map[string]any{}, map[string]any{}
			for i := 0; i < cfg.NumLabels; i++ {
				name := "LABEL_" + strconv.Itoa(i)
				id2label[strconv.Itoa(i)] = name
				label2id[name] = i
			}
			obj["id2label"], obj["label2id"] = id2label, label2id
			delete(obj, "num_labels")
			if cfg.NumLabels == 1 {
				obj["problem_type"] = "regression"
			} else if obj["problem_type"] == "regression" {
				delete(obj, "problem_type")
			}
		}
	}
	return marshalJSON(obj)
}

func isClassifier(cfg *model.Config) bool {
	arch, err := model.LookupArchitecture(cfg.Architectures[0])
	return err == nil && arch.Task == model.SequenceClassification
}

// marshalJSON writes v as indented JSON with sorted keys, without escaping <, > and &
// (chat templates), ending in a newline.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("export: encode JSON: %w", err)
	}
	return buf.Bytes(), nil
}
