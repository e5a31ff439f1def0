package data_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/data/internal/synth"
)

// The committed files are exactly what the generator writes.
func TestCommittedTestdataMatchesGenerator(t *testing.T) {
	files, err := synth.Files()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s differs from the generator; run go generate ./data", name)
		}
	}
}

// Every committed dataset reads, builds and batches.
func TestCommittedTestdataReads(t *testing.T) {
	cases := []struct {
		file    string
		format  data.Format
		labels  []string
		records int
	}{
		{"alpaca_tiny_train.json", data.AlpacaJSON, nil, synth.AlpacaTrain},
		{"alpaca_tiny_eval.json", data.AlpacaJSON, nil, synth.AlpacaEval},
		{"commonsense_tiny.json", data.CommonsenseJSON, nil, synth.CommonsenseExamples},
		{"sentiment_tiny_train.jsonl", data.ClassificationJSONL, []string{"negative", "positive"}, synth.SentimentTrain},
		{"sentiment_tiny_eval.jsonl", data.ClassificationJSONL, []string{"negative", "positive"}, synth.SentimentEval},
	}
	b, err := data.NewBuilder(data.ByteTokenizer{}, data.BuildConfig{MaxLen: 512})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		ds, err := data.Read(data.ReadConfig{Format: c.format, Paths: []string{filepath.Join("testdata", c.file)}, Labels: c.labels})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds.Records) != c.records {
			t.Errorf("%s: %d records, want %d", c.file, len(ds.Records), c.records)
		}
		examples, sum, err := b.Build(ds.Records)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Truncated != 0 || sum.NoTargets != 0 {
			t.Errorf("%s: %s", c.file, sum)
		}
		if _, err := (&data.Collator{}).Collate(examples[:8]); err != nil {
			t.Errorf("%s: %v", c.file, err)
		}
		if c.format == data.CommonsenseJSON && ds.Records[0].Answer == "" {
			t.Errorf("%s: no answer", c.file)
		}
	}
}
