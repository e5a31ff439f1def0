package evaluate_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/evaluate"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/tokenizer"
)

// Multiple choice on commonsense-170k-style records with a tiny random Llama (what
// `lrtrain eval --task multiple-choice` does): each question's options come from its
// "Answer format:" line and are scored by log-likelihood.
func Example() {
	dir, err := os.MkdirTemp("", "evaluate-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := hfinit.Write(dir, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1}); err != nil {
		log.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		log.Fatal(err)
	}
	p, err := evaluate.NewPipeline(tok, data.BuildConfig{MaxLen: 256})
	if err != nil {
		log.Fatal(err)
	}
	ds, err := data.Read(data.ReadConfig{Format: data.CommonsenseJSON, Paths: []string{"../data/testdata/commonsense_tiny.json"}})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := evaluate.Run(m, p, ds.Records[:6], evaluate.TaskMultipleChoice, nil, evaluate.Options{})
	if err != nil {
		log.Fatal(err)
	}
	items, _ := evaluate.ChoicesFromRecords(ds.Records[:1])
	fmt.Println(items[0].Options, rep.Examples, "questions")
	_, ok := rep.Metric("accuracy")
	fmt.Println("accuracy reported:", ok)
	// Output:
	// [answer1 answer2] 6 questions
	// accuracy reported: true
}
