package data

import (
	"fmt"
	"sort"
	"strings"
)

// Format names a dataset layout. It is always chosen explicitly by configuration; files are
// never sniffed.
type Format string

// The supported formats.
const (
	// AlpacaJSON is a JSON array of {"instruction", "input", "output"} objects.
	AlpacaJSON Format = "alpaca_json"
	// AlpacaJSONL is one {"instruction", "input", "output"} object per line.
	AlpacaJSONL Format = "alpaca_jsonl"
	// CommonsenseJSON is the commonsense-170k layout: a JSON array of {"instruction",
	// "input", "output", "answer"} objects. The model is trained on output; answer is the
	// short gold answer ("option1", "true", ...) kept for evaluation.
	CommonsenseJSON Format = "commonsense_json"
	// CommonsenseJSONL is the commonsense-170k layout, one object per line.
	CommonsenseJSONL Format = "commonsense_jsonl"
	// ClassificationJSONL is one {"text" | "sentence", "label"} or {"sentence1",
	// "sentence2", "label"} object per line.
	ClassificationJSONL Format = "classification_jsonl"
	// TextFile is plain text, one document per file.
	TextFile Format = "text_file"
	// TextLines is plain text, one document per non-blank line.
	TextLines Format = "text_lines"
)

var formats = map[Format]Kind{
	AlpacaJSON: KindInstruction, AlpacaJSONL: KindInstruction,
	CommonsenseJSON: KindInstruction, CommonsenseJSONL: KindInstruction,
	ClassificationJSONL: KindClassification,
	TextFile:            KindText, TextLines: KindText,
}

// Formats lists the supported format names, sorted.
func Formats() []string {
	names := make([]string, 0, len(formats))
	for f := range formats {
		names = append(names, string(f))
	}
	sort.Strings(names)
	return names
}

// ParseFormat checks a configured format name.
func ParseFormat(name string) (Format, error) {
	f := Format(name)
	if _, ok := formats[f]; !ok {
		return "", fmt.Errorf("%w: unknown format %q (known: %s)", ErrConfig, name,
			strings.Join(Formats(), ", "))
	}
	return f, nil
}

// Kind is what a record holds, which decides how it becomes an Example.
type Kind int

// Record kinds.
const (
	KindInstruction Kind = iota + 1
	KindClassification
	KindText
)

func (k Kind) String() string {
	switch k {
	case KindInstruction:
		return "instruction"
	case KindClassification:
		return "classification"
	case KindText:
		return "text"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Kind returns the kind of records a format yields (0 for an unknown format).
func (f Format) Kind() Kind { return formats[f] }

// Record is one dataset entry. Which fields are set depends on Kind.
type Record struct {
	Kind Kind
	// Instruction records (alpaca, commonsense).
	Instruction, Input, Output string
	// Answer is the commonsense-170k short answer; empty for alpaca.
	Answer string
	// Text is the document (plain text) or the first text (classification); TextPair is
	// the second text of a sentence pair, and HasPair tells whether there is one.
	Text, TextPair string
	HasPair        bool
	// Label is the class index; Score the regression target (ReadConfig.Regression).
	Label int
	Score float64
	// File and Line locate the record (Line is 1 for a whole-file document).
	File string
	Line int
}

// ReadConfig says what to read and how.
type ReadConfig struct {
	Format Format
	// Paths are the files to read, in order. For TextFile a directory stands for the
	// *.txt files directly inside it, in name order.
	Paths []string
	// Labels maps string labels to class indices (the label's position); when set, an
	// integer label must also be below len(Labels).
	Labels []string
	// Regression reads numeric labels as float scores (STS-B) instead of class indices.
	Regression bool
	// SkipBadRecords skips bad records and counts them in the Summary instead of failing.
	// A syntax error inside a JSON array cannot be skipped: the rest of the array cannot
	// be trusted.
	SkipBadRecords bool
}

// Dataset is what Read returns: the records in file order and a summary.
type Dataset struct {
	Format  Format
	Records []Record
	Summary Summary
}

// maxSkipExamples bounds the skipped-record messages kept in a Summary.
const maxSkipExamples = 10

// Summary reports what Read did.
type Summary struct {
	Files   []FileCount
	Records int
	// Skipped counts bad records skipped under SkipBadRecords; SkippedMessages holds the
	// first few of their errors.
	Skipped         int
	SkippedMessages []string
}

// FileCount is the number of records read from and skipped in one file.
type FileCount struct {
	File             string
	Records, Skipped int
}

func (s Summary) String() string {
	var b strings.Builder
	files := "files"
	if len(s.Files) == 1 {
		files = "file"
	}
	fmt.Fprintf(&b, "%d records from %d %s", s.Records, len(s.Files), files)
	if s.Skipped > 0 {
		fmt.Fprintf(&b, ", %d bad records skipped", s.Skipped)
		for _, m := range s.SkippedMessages {
			fmt.Fprintf(&b, "\n  %s", m)
		}
		if s.Skipped > len(s.SkippedMessages) {
			fmt.Fprintf(&b, "\n  ... and %d more", s.Skipped-len(s.SkippedMessages))
		}
	}
	return b.String()
}
