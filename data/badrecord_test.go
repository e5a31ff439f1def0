package data_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/data"
)

const goodAlpaca = `{"instruction": "i", "input": "", "output": "o"}`

// Every bad record fails with its file, line and reason.
func TestBadRecordsNameFileAndLine(t *testing.T) {
	labels := []string{"negative", "positive"}
	cases := []struct {
		name    string
		format  data.Format
		content string
		cfg     data.ReadConfig
		line    int
		reason  string
	}{
		{"invalid json", data.AlpacaJSONL, goodAlpaca + "\n" + goodAlpaca + "\n" + `{"instruction": "i", "output": }`,
			data.ReadConfig{}, 3, "invalid JSON: invalid character '}'"},
		{"trailing garbage", data.AlpacaJSONL, goodAlpaca + ` x`, data.ReadConfig{}, 1, "invalid JSON"},
		{"not an object", data.AlpacaJSONL, goodAlpaca + "\n[1, 2]", data.ReadConfig{}, 2,
			"record is a JSON array, want an object"},
		{"missing output", data.AlpacaJSONL, goodAlpaca + "\n" + `{"instruction": "i", "input": ""}`, data.ReadConfig{}, 2,
			`missing field "output"`},
		{"null instruction", data.AlpacaJSONL, `{"instruction": null, "output": "o"}`, data.ReadConfig{}, 1,
			`missing field "instruction"`},
		{"output is a number", data.AlpacaJSONL, "\n\n" + `{"instruction": "i", "output": 5}`, data.ReadConfig{}, 3,
			`field "output" is a number, want a string`},
		{"input is an object", data.AlpacaJSONL, `{"instruction": "i", "input": {}, "output": "o"}`, data.ReadConfig{}, 1,
			`field "input" is a object, want a string`},
		{"missing answer", data.CommonsenseJSONL, goodAlpaca, data.ReadConfig{}, 1, `missing field "answer"`},
		{"unknown label", data.ClassificationJSONL, `{"text": "a", "label": "neutral"}`, data.ReadConfig{Labels: labels}, 1,
			`unknown label "neutral" (known: negative, positive)`},
		{"string label without list", data.ClassificationJSONL, `{"text": "a", "label": "positive"}`, data.ReadConfig{}, 1,
			`string label "positive" needs a label list`},
		{"fractional class", data.ClassificationJSONL, `{"text": "a", "label": 0.5}`, data.ReadConfig{}, 1,
			"label 0.5 is not an integer class index"},
		{"class out of range", data.ClassificationJSONL, `{"text": "a", "label": 2}`, data.ReadConfig{Labels: labels}, 1,
			"label 2 out of range (2 labels: negative, positive)"},
		{"negative class", data.ClassificationJSONL, `{"text": "a", "label": -1}`, data.ReadConfig{}, 1, "label -1 is negative"},
		{"boolean label", data.ClassificationJSONL, `{"text": "a", "label": true}`, data.ReadConfig{}, 1,
			`field "label" is a boolean, want a number or a string`},
		{"missing label", data.ClassificationJSONL, `{"text": "a"}`, data.ReadConfig{}, 1, `missing field "label"`},
		{"missing text", data.ClassificationJSONL, `{"label": 1}`, data.ReadConfig{}, 1, `missing field "text"`},
		{"missing sentence2", data.ClassificationJSONL, `{"sentence1": "a", "label": 1}`, data.ReadConfig{}, 1,
			`missing field "sentence2"`},
		{"string score", data.ClassificationJSONL, `{"text": "a", "label": "4.0"}`, data.ReadConfig{Regression: true}, 1,
			`label "4.0" is a string, want a number (regression)`},
		{"array element missing field", data.AlpacaJSON, "[\n  " + goodAlpaca + ",\n  {\n    \"instruction\": \"i\"\n  }\n]",
			data.ReadConfig{}, 3, `missing field "output"`},
		{"array element wrong type", data.CommonsenseJSON, "[\n" + `{"instruction": "i", "output": "o", "answer": 1}` + "\n]",
			data.ReadConfig{}, 2, `field "answer" is a number, want a string`},
		{"array syntax error", data.AlpacaJSON, "[\n  " + goodAlpaca + ",\n  " + goodAlpaca + ",\n  {\"instruction\" \"i\"}\n]",
			data.ReadConfig{SkipBadRecords: true}, 4, "invalid JSON"},
		{"array truncated", data.AlpacaJSON, "[\n  " + goodAlpaca + ",\n  {\"instruction\": \"i\",\n",
			data.ReadConfig{SkipBadRecords: true}, 3, "unexpected end of file"},
		{"not an array", data.AlpacaJSON, "\n" + goodAlpaca, data.ReadConfig{SkipBadRecords: true}, 2,
			"expected a JSON array for format alpaca_json (for one object per line use the _jsonl format)"},
		{"data after the array", data.AlpacaJSON, "[" + goodAlpaca + "]\n[]", data.ReadConfig{SkipBadRecords: true}, 2,
			"unexpected data after the JSON array"},
		{"invalid utf-8 line", data.TextLines, "ok\nbad \xff byte\n", data.ReadConfig{}, 2, "invalid UTF-8"},
		{"invalid utf-8 file", data.TextFile, "ok\nstill ok\nbad \xc3\n", data.ReadConfig{}, 3, "invalid UTF-8"},
		{"invalid utf-8 jsonl", data.AlpacaJSONL, goodAlpaca + "\n" + "{\"instruction\": \"caf\xe9\", \"output\": \"o\"}",
			data.ReadConfig{}, 2, "invalid UTF-8"},
		{"invalid utf-8 json array", data.AlpacaJSON, "[\n  " + goodAlpaca + ",\n  {\"instruction\": \"i\",\n   \"output\": \"\xff\"}\n]",
			data.ReadConfig{}, 4, "invalid UTF-8"},
		{"invalid utf-8 classification", data.ClassificationJSONL, "{\"text\": \"\xc3(\", \"label\": 1}", data.ReadConfig{}, 1,
			"invalid UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, path, err := readOne(t, c.format, "data.in", c.content, c.cfg)
			wantRecordError(t, err, path, c.line, c.reason)
		})
	}
}

func TestSkipBadRecordsCountsThem(t *testing.T) {
	dir := t.TempDir()
	content := strings.Join([]string{
		goodAlpaca,
		`{"instruction": "i"`, // 2: invalid JSON
		goodAlpaca,
		`{"instruction": "i", "output": 3}`, // 4: wrong type
		`"just a string"`,                   // 5: not an object
		goodAlpaca,
	}, "\n")
	first := writeFile(t, dir, "first.jsonl", content)
	second := writeFile(t, dir, "second.jsonl", goodAlpaca+"\n{}\n")
	ds, err := data.Read(data.ReadConfig{Format: data.AlpacaJSONL, Paths: []string{first, second}, SkipBadRecords: true})
	if err != nil {
		t.Fatal(err)
	}
	s := ds.Summary
	if len(ds.Records) != 4 || s.Records != 4 || s.Skipped != 4 {
		t.Fatalf("records %d, summary %+v; want 4 records and 4 skipped", len(ds.Records), s)
	}
	if s.Files[0] != (data.FileCount{File: first, Records: 3, Skipped: 3}) ||
		s.Files[1] != (data.FileCount{File: second, Records: 1, Skipped: 1}) {
		t.Errorf("per-file counts = %+v", s.Files)
	}
	wantPrefixes := []string{first + ":2: invalid JSON", first + ":4: field \"output\" is a number",
		first + ":5: record is a JSON string", second + ":2: missing field \"instruction\""}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(s.SkippedMessages[i], "data: "+p) {
			t.Errorf("skipped message %d = %q, want prefix %q", i, s.SkippedMessages[i], p)
		}
	}
	if str := s.String(); !strings.Contains(str, "4 records from 2 files, 4 bad records skipped") {
		t.Errorf("summary string = %q", str)
	}

	// Without the option the first bad record stops the read.
	_, err = data.Read(data.ReadConfig{Format: data.AlpacaJSONL, Paths: []string{first, second}})
	wantRecordError(t, err, first, 2, "invalid JSON")
}

func TestSkipBadRecordsInJSONArrayAndLabels(t *testing.T) {
	array := "[\n  " + goodAlpaca + ",\n  {\"instruction\": 1, \"output\": \"o\"},\n  {\"output\": \"o\"},\n  " + goodAlpaca + "\n]\n"
	ds, path, err := readOne(t, data.AlpacaJSON, "a.json", array, data.ReadConfig{SkipBadRecords: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Records) != 2 || ds.Summary.Skipped != 2 || ds.Records[1].Line != 5 {
		t.Errorf("records %+v, summary %+v", ds.Records, ds.Summary)
	}
	if !strings.HasPrefix(ds.Summary.SkippedMessages[1], "data: "+path+":4: missing field \"instruction\"") {
		t.Errorf("skipped = %q", ds.Summary.SkippedMessages)
	}

	lines := `{"text": "a", "label": "positive"}
{"text": "b", "label": "neutral"}
{"text": "c", "label": "negative"}
`
	ds, _, err = readOne(t, data.ClassificationJSONL, "c.jsonl", lines,
		data.ReadConfig{Labels: []string{"negative", "positive"}, SkipBadRecords: true})
	if err != nil || len(ds.Records) != 2 || ds.Summary.Skipped != 1 {
		t.Fatalf("err %v, summary %+v", err, ds.Summary)
	}
}

func TestSkippedMessagesAreBounded(t *testing.T) {
	content := strings.Repeat("{}\n", 25) + goodAlpaca
	ds, _, err := readOne(t, data.AlpacaJSONL, "a.jsonl", content, data.ReadConfig{SkipBadRecords: true})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Summary.Skipped != 25 || len(ds.Summary.SkippedMessages) != 10 ||
		!strings.Contains(ds.Summary.String(), "... and 15 more") {
		t.Errorf("summary = %s", ds.Summary)
	}
	if !errors.Is(&data.RecordError{}, data.ErrBadRecord) {
		t.Error("RecordError must wrap ErrBadRecord")
	}
}

// With skip_bad_records a wrongly encoded record is counted and left out, not kept with
// U+FFFD in place of its bytes.
func TestSkipBadRecordsCountsInvalidUTF8(t *testing.T) {
	content := goodAlpaca + "\n" + "{\"instruction\": \"na\xefve\", \"output\": \"o\"}\n" + goodAlpaca
	ds, path, err := readOne(t, data.AlpacaJSONL, "a.jsonl", content, data.ReadConfig{SkipBadRecords: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.Records) != 2 || ds.Summary.Skipped != 1 ||
		!strings.HasPrefix(ds.Summary.SkippedMessages[0], "data: "+path+":2: invalid UTF-8") {
		t.Fatalf("records %d, summary %+v", len(ds.Records), ds.Summary)
	}
	for _, r := range ds.Records {
		if strings.ContainsRune(r.Instruction, '\uFFFD') {
			t.Errorf("record at line %d kept a replacement character: %q", r.Line, r.Instruction)
		}
	}
}
