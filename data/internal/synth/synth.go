// Package synth generates the small synthetic datasets committed under data/testdata: a
// tiny alpaca-style instruction task, a tiny commonsense-170k-style multiple-choice task
// and a tiny sentiment classification task. Everything comes from a fixed seed, so the
// files are reproducible byte for byte:
//
//	go run ./data/internal/synth/gen -out data/testdata
//
// (the data package's tests regenerate them in a temporary directory and compare).
package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Seed is the seed every file is generated from.
const Seed = 20240611

// Sizes of the generated splits.
const (
	AlpacaTrain, AlpacaEval       = 200, 40
	CommonsenseExamples           = 60
	SentimentTrain, SentimentEval = 200, 40
)

// Instruction is an alpaca / commonsense record.
type Instruction struct {
	Instruction string `json:"instruction"`
	Input       string `json:"input"`
	Output      string `json:"output"`
	Answer      string `json:"answer,omitempty"`
}

// Sentiment is a classification record.
type Sentiment struct {
	Text  string `json:"text"`
	Label string `json:"label"`
}

// Files returns every generated file by name.
func Files() (map[string][]byte, error) {
	files := map[string][]byte{}
	r := &rng{state: Seed}

	alpaca := unique(AlpacaTrain+AlpacaEval, func() (Instruction, string) {
		rec := alpacaRecord(r)
		return rec, rec.Instruction + "\x00" + rec.Input
	})
	commonsense := unique(CommonsenseExamples, func() (Instruction, string) {
		rec := commonsenseRecord(r)
		return rec, rec.Instruction
	})
	sentiment := unique(SentimentTrain+SentimentEval, func() (Sentiment, string) {
		rec := sentimentRecord(r)
		return rec, rec.Text
	})

	var err error
	if files["alpaca_tiny_train.json"], err = jsonArray(alpaca[:AlpacaTrain]); err != nil {
		return nil, err
	}
	if files["alpaca_tiny_eval.json"], err = jsonArray(alpaca[AlpacaTrain:]); err != nil {
		return nil, err
	}
	if files["commonsense_tiny.json"], err = jsonArray(commonsense); err != nil {
		return nil, err
	}
	if files["sentiment_tiny_train.jsonl"], err = jsonLines(sentiment[:SentimentTrain]); err != nil {
		return nil, err
	}
	if files["sentiment_tiny_eval.jsonl"], err = jsonLines(sentiment[SentimentTrain:]); err != nil {
		return nil, err
	}
	return files, nil
}

// Write writes every generated file into dir.
func Write(dir string) error {
	files, err := Files()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	return nil
}

// unique draws records until n distinct keys have been seen, keeping the first of each.
func unique[T any](n int, draw func() (T, string)) []T {
	seen := map[string]bool{}
	out := make([]T, 0, n)
	for len(out) < n {
		rec, key := draw()
		if !seen[key] {
			seen[key] = true
			out = append(out, rec)
		}
	}
	return out
}

func jsonArray[T any](records []T) ([]byte, error) {
	b, err := json.MarshalIndent(records, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	return append(b, '\n'), nil
}

func jsonLines[T any](records []T) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, rec := range records {
		if err := enc.Encode(rec); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// rng is SplitMix64; intn's modulo bias is irrelevant for these tiny lists.
type rng struct{ state uint64 }

func (r *rng) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func pick(r *rng, list []string) string { return list[r.intn(len(list))] }

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

func upper(s string) string { return strings.ToUpper(s) }
