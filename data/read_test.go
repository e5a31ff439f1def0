package data_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/data"
)

func TestReadAlpacaJSONL(t *testing.T) {
	content := `{"instruction": "Add.", "input": "1 + 2", "output": "3"}

{"instruction": "Say hi.", "output": "hi", "extra": [1, 2]}
{"instruction": "Say bye.", "input": null, "output": "bye"}` + "\r\n"
	ds, path, err := readOne(t, data.AlpacaJSONL, "a.jsonl", content, data.ReadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := []data.Record{
		{Kind: data.KindInstruction, Instruction: "Add.", Input: "1 + 2", Output: "3", File: path, Line: 1},
		{Kind: data.KindInstruction, Instruction: "Say hi.", Output: "hi", File: path, Line: 3},
		{Kind: data.KindInstruction, Instruction: "Say bye.", Output: "bye", File: path, Line: 4},
	}
	if len(ds.Records) != len(want) {
		t.Fatalf("got %d records, want %d", len(ds.Records), len(want))
	}
	for i := range want {
		if ds.Records[i] != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, ds.Records[i], want[i])
		}
	}
	if ds.Summary.Records != 3 || ds.Summary.Skipped != 0 || len(ds.Summary.Files) != 1 {
		t.Errorf("summary = %+v", ds.Summary)
	}
}

func TestReadJSONArrayLinesAndFormats(t *testing.T) {
	content := "\xef\xbb\xbf[\n" + // byte order mark
		"  {\"instruction\": \"Q1\", \"input\": \"\", \"output\": \"the correct answer is answer1\", \"answer\": \"answer1\"},\n" +
		"\n" +
		"  {\n    \"instruction\": \"Q2\",\n    \"input\": \"x\",\n    \"output\": \"o2\",\n    \"answer\": \"true\"\n  }\n]\n"
	ds, path, err := readOne(t, data.CommonsenseJSON, "c.json", content, data.ReadConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Records) != 2 {
		t.Fatalf("got %d records", len(ds.Records))
	}
	r0, r1 := ds.Records[0], ds.Records[1]
	if r0.Line != 2 || r1.Line != 4 || r0.File != path {
		t.Errorf("lines %d, %d; want 2, 4", r0.Line, r1.Line)
	}
	if r0.Answer != "answer1" || r0.Output != "the correct answer is answer1" || r1.Input != "x" || r1.Answer != "true" {
		t.Errorf("records = %+v", ds.Records)
	}

	// The same file as alpaca_json: answer is ignored.
	ds, _, err = readOne(t, data.AlpacaJSON, "a.json", content, data.ReadConfig{})
	if err != nil || len(ds.Records) != 2 || ds.Records[0].Answer != "" {
		t.Fatalf("alpaca_json: %v %+v", err, ds)
	}
	// And as JSONL, one object per line.
	jsonl := `{"instruction": "Q", "input": "", "output": "o", "answer": "option2"}` + "\n"
	ds, _, err = readOne(t, data.CommonsenseJSONL, "c.jsonl", jsonl, data.ReadConfig{})
	if err != nil || ds.Records[0].Answer != "option2" {
		t.Fatalf("commonsense_jsonl: %v %+v", err, ds)
	}
}

func TestReadClassification(t *testing.T) {
	content := `{"text": "good film", "label": 1}
{"sentence": "bad film", "label": "negative"}
{"sentence1": "a cat", "sentence2": "a feline", "label": "positive"}
{"text": "fine", "label": 1.0}
`
	ds, _, err := readOne(t, data.ClassificationJSONL, "c.jsonl", content,
		data.ReadConfig{Labels: []string{"negative", "positive"}})
	if err != nil {
		t.Fatal(err)
	}
	got := ds.Records
	if len(got) != 4 {
		t.Fatalf("got %d records", len(got))
	}
	if got[0].Text != "good film" || got[0].Label != 1 || got[0].HasPair {
		t.Errorf("record 0 = %+v", got[0])
	}
	if got[1].Text != "bad film" || got[1].Label != 0 {
		t.Errorf("record 1 = %+v", got[1])
	}
	if !got[2].HasPair || got[2].Text != "a cat" || got[2].TextPair != "a feline" || got[2].Label != 1 {
		t.Errorf("record 2 = %+v", got[2])
	}
	if got[3].Label != 1 || got[0].Kind != data.KindClassification {
		t.Errorf("record 3 = %+v", got[3])
	}

	// Regression (STS-B): float scores.
	sts := `{"sentence1": "a", "sentence2": "b", "label": 3.8}
{"sentence1": "c", "sentence2": "d", "label": 0}
`
	ds, _, err = readOne(t, data.ClassificationJSONL, "sts.jsonl", sts, data.ReadConfig{Regression: true})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Records[0].Score != 3.8 || ds.Records[1].Score != 0 || !ds.Records[0].HasPair {
		t.Errorf("scores = %+v", ds.Records)
	}
}

func TestReadPlainText(t *testing.T) {
	dir := t.TempDir()
	b := writeFile(t, dir, "b.txt", "second document\nwith two lines\n")
	a := writeFile(t, dir, "a.txt", "first document")
	writeFile(t, dir, "notes.md", "not a text document")
	writeFile(t, dir, "c.txt", " \n") // blank: nothing to learn
	ds, err := data.Read(data.ReadConfig{Format: data.TextFile, Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Records) != 2 || ds.Records[0].File != a || ds.Records[1].File != b ||
		ds.Records[0].Text != "first document" || ds.Records[1].Text != "second document\nwith two lines\n" {
		t.Errorf("text_file records = %+v", ds.Records)
	}
	if len(ds.Summary.Files) != 3 {
		t.Errorf("summary files = %+v, want a.txt, b.txt, c.txt", ds.Summary.Files)
	}

	lines := writeFile(t, dir, "lines.txt", "one\r\n\n  \ntwo words\nthree")
	ds, err = data.Read(data.ReadConfig{Format: data.TextLines, Paths: []string{lines}})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	var lineNos []int
	for _, r := range ds.Records {
		texts, lineNos = append(texts, r.Text), append(lineNos, r.Line)
	}
	if strings.Join(texts, "|") != "one|two words|three" || !equalInts(lineNos, []int{1, 4, 5}) {
		t.Errorf("text_lines = %q at lines %v", texts, lineNos)
	}
}

func TestReadSeveralFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	p1 := writeFile(t, dir, "2.jsonl", `{"instruction": "i1", "output": "o1"}`)
	p2 := writeFile(t, dir, "1.jsonl", `{"instruction": "i2", "output": "o2"}`)
	ds, err := data.Read(data.ReadConfig{Format: data.AlpacaJSONL, Paths: []string{p1, p2}})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Records[0].Instruction != "i1" || ds.Records[1].File != p2 || len(ds.Summary.Files) != 2 {
		t.Errorf("records = %+v", ds.Records)
	}
}

func TestReadConfigErrors(t *testing.T) {
	path := writeFile(t, t.TempDir(), "a.jsonl", `{"instruction": "i", "output": "o"}`)
	cases := map[string]data.ReadConfig{
		"unknown format":        {Format: "alpaca", Paths: []string{path}},
		"no paths":              {Format: data.AlpacaJSONL},
		"labels and regression": {Format: data.ClassificationJSONL, Paths: []string{path}, Labels: []string{"a"}, Regression: true},
		"duplicate label":       {Format: data.ClassificationJSONL, Paths: []string{path}, Labels: []string{"a", "a"}},
		"directory for jsonl":   {Format: data.AlpacaJSONL, Paths: []string{t.TempDir()}},
	}
	for name, cfg := range cases {
		if _, err := data.Read(cfg); !errors.Is(err, data.ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	_, err := data.ParseFormat("alpaca")
	if err == nil || !strings.Contains(err.Error(), "alpaca_json, alpaca_jsonl") {
		t.Errorf("ParseFormat error %v should list the known formats", err)
	}
	if f, err := data.ParseFormat("commonsense_json"); err != nil || f != data.CommonsenseJSON {
		t.Errorf("ParseFormat(commonsense_json) = %q, %v", f, err)
	}
}

func TestReadEmptyDatasetNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		format  data.Format
		content string
		skip    bool
		want    string
	}{
		{data.AlpacaJSONL, "", false, "no records"},
		{data.AlpacaJSONL, "\n  \n", false, "no records"},
		{data.AlpacaJSON, "[]", false, "no records"},
		{data.CommonsenseJSON, " \n", false, "no records"},
		{data.TextLines, "\n\n", false, "no records"},
		{data.AlpacaJSONL, "{}\n[]\n", true, "no records left after skipping 2 bad ones"},
	}
	for i, c := range cases {
		path := writeFile(t, dir, "empty"+itoa(i), c.content)
		_, err := data.Read(data.ReadConfig{Format: c.format, Paths: []string{path}, SkipBadRecords: c.skip})
		if !errors.Is(err, data.ErrEmpty) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: err = %v, want ErrEmpty naming %s and saying %q", i, err, path, c.want)
		}
	}
	_, err := data.Read(data.ReadConfig{Format: data.TextFile, Paths: []string{dir}})
	if !errors.Is(err, data.ErrEmpty) || !strings.Contains(err.Error(), dir) {
		t.Errorf("directory without *.txt: err = %v", err)
	}
}
