package hfinit_test

import (
	"fmt"
	"log"
	"os"

	"github.com/lrtrain/lrtrain/model/hfinit"
)

// Write a tiny random RoBERTa regression model (num_labels 1, as for STS-B).
func Example() {
	dir, err := os.MkdirTemp("", "roberta")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg, err := hfinit.Write(dir, hfinit.Options{Arch: "roberta", Preset: "tiny", NumLabels: 1})
	if err != nil {
		log.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	fmt.Println(cfg.Architectures[0], cfg.NumLabels, cfg.Regression())
	// Output:
	// config.json
	// model.safetensors
	// special_tokens_map.json
	// tokenizer.json
	// tokenizer_config.json
	// RobertaForSequenceClassification 1 true
}
