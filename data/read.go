package data

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// Read reads a dataset. A bad record stops it with a *RecordError naming the file and line
// (wrapping ErrBadRecord) unless cfg.SkipBadRecords is set, in which case it is counted in
// the Summary. A dataset without records fails with ErrEmpty, naming the files read.
func Read(cfg ReadConfig) (*Dataset, error) {
	if _, err := ParseFormat(string(cfg.Format)); err != nil {
		return nil, err
	}
	if len(cfg.Paths) == 0 {
		return nil, fmt.Errorf("%w: no input paths for format %s", ErrConfig, cfg.Format)
	}
	r := &reader{cfg: cfg, ds: &Dataset{Format: cfg.Format}}
	if err := r.setLabels(); err != nil {
		return nil, err
	}
	files, err := expandPaths(cfg)
	if err != nil {
		return nil, err
	}
	for _, file := range files {
		if err := r.readFile(file); err != nil {
			return nil, err
		}
	}
	if len(r.ds.Records) == 0 {
		what := "no records"
		if r.ds.Summary.Skipped > 0 {
			what = fmt.Sprintf("no records left after skipping %d bad ones", r.ds.Summary.Skipped)
		}
		return nil, fmt.Errorf("%w: %s: %s (format %s)", ErrEmpty, strings.Join(files, ", "), what, cfg.Format)
	}
	return r.ds, nil
}

// expandPaths resolves TextFile directories into their *.txt files.
func expandPaths(cfg ReadConfig) ([]string, error) {
	var files []string
	for _, p := range cfg.Paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("data: read %s dataset: %w", cfg.Format, err)
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		if cfg.Format != TextFile {
			return nil, fmt.Errorf("%w: %s is a directory; only %s reads directories", ErrConfig, p, TextFile)
		}
		txt, err := filepath.Glob(filepath.Join(p, "*.txt"))
		if err != nil {
			return nil, fmt.Errorf("data: list %s: %w", p, err)
		}
		if len(txt) == 0 {
			return nil, fmt.Errorf("%w: %s: directory has no *.txt files", ErrEmpty, p)
		}
		sort.Strings(txt)
		files = append(files, txt...)
	}
	return files, nil
}

type reader struct {
	cfg     ReadConfig
	ds      *Dataset
	labelOf map[string]int
	count   *FileCount
}

func (r *reader) setLabels() error {
	if r.cfg.Regression && len(r.cfg.Labels) > 0 {
		return fmt.Errorf("%w: labels and regression are exclusive", ErrConfig)
	}
	r.labelOf = make(map[string]int, len(r.cfg.Labels))
	for i, l := range r.cfg.Labels {
		if _, dup := r.labelOf[l]; dup {
			return fmt.Errorf("%w: label %q listed twice", ErrConfig, l)
		}
		r.labelOf[l] = i
	}
	return nil
}

func (r *reader) readFile(file string) error {
	content, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("data: read %s dataset: %w", r.cfg.Format, err)
	}
	content = bytes.TrimPrefix(content, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	r.ds.Summary.Files = append(r.ds.Summary.Files, FileCount{File: file})
	r.count = &r.ds.Summary.Files[len(r.ds.Summary.Files)-1]
	switch r.cfg.Format {
	case AlpacaJSON, CommonsenseJSON:
		return r.readJSONArray(file, content)
	case AlpacaJSONL, CommonsenseJSONL, ClassificationJSONL:
		return r.readJSONL(file, content)
	case TextFile:
		return r.readTextFile(file, content)
	case TextLines:
		return r.readTextLines(file, content)
	}
	return fmt.Errorf("%w: unknown format %q", ErrConfig, r.cfg.Format)
}

// add keeps a good record.
func (r *reader) add(rec Record) {
	r.ds.Records = append(r.ds.Records, rec)
	r.ds.Summary.Records++
	r.count.Records++
}

// bad fails on a bad record, or counts it under SkipBadRecords.
func (r *reader) bad(e *RecordError) error {
	if !r.cfg.SkipBadRecords {
		return e
	}
	s := &r.ds.Summary
	s.Skipped++
	r.count.Skipped++
	if len(s.SkippedMessages) < maxSkipExamples {
		s.SkippedMessages = append(s.SkippedMessages, e.Error())
	}
	return nil
}

func (r *reader) readJSONL(file string, content []byte) error {
	for lineNo, line := range splitLines(content) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, e := r.parseObject(file, lineNo+1, line)
		if e != nil {
			if err := r.bad(e); err != nil {
				return err
			}
			continue
		}
		r.add(rec)
	}
	return nil
}

func (r *reader) readJSONArray(file string, content []byte) error {
	if len(bytes.TrimSpace(content)) == 0 {
		return nil // an empty file holds no records; ErrEmpty if no file does
	}
	lines := lineCounter{content: content, line: 1}
	dec := json.NewDecoder(bytes.NewReader(content))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('[') {
		start := len(content) - len(bytes.TrimLeft(content, " \t\r\n"))
		return badRecord(file, lines.at(start),
			"expected a JSON array for format %s (for one object per line use the _jsonl format)", r.cfg.Format)
	}
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return badRecord(file, lines.at(syntaxOffset(err, dec, content)), "invalid JSON: %s", jsonMessage(err))
		}
		start := int(dec.InputOffset()) - len(raw)
		rec, e := r.parseObject(file, lines.at(start), raw)
		if e != nil {
			if err := r.bad(e); err != nil {
				return err
			}
			continue
		}
		r.add(rec)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return badRecord(file, lines.at(syntaxOffset(err, dec, content)), "invalid JSON: %s", jsonMessage(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRecord(file, lines.at(int(dec.InputOffset())), "unexpected data after the JSON array")
	}
	return nil
}

func (r *reader) readTextFile(file string, content []byte) error {
	if bad := invalidUTF8Line(content); bad > 0 {
		return r.bad(badRecord(file, bad, "invalid UTF-8"))
	}
	if len(bytes.TrimSpace(content)) == 0 {
		return nil // an empty document is nothing to learn from; ErrEmpty if all are
	}
	r.add(Record{Kind: KindText, Text: string(content), File: file, Line: 1})
	return nil
}

func (r *reader) readTextLines(file string, content []byte) error {
	for lineNo, line := range splitLines(content) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if !utf8.Valid(line) {
			if err := r.bad(badRecord(file, lineNo+1, "invalid UTF-8")); err != nil {
				return err
			}
			continue
		}
		r.add(Record{Kind: KindText, Text: string(line), File: file, Line: lineNo + 1})
	}
	return nil
}

// splitLines splits on '\n' and drops a trailing '\r' from each line.
func splitLines(content []byte) [][]byte {
	lines := bytes.Split(content, []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimSuffix(l, []byte("\r"))
	}
	return lines
}

// invalidUTF8Line returns the 1-based line of the first invalid UTF-8 byte, or 0.
func invalidUTF8Line(content []byte) int {
	for off := 0; off < len(content); {
		c, size := utf8.DecodeRune(content[off:])
		if c == utf8.RuneError && size == 1 {
			return 1 + bytes.Count(content[:off], []byte("\n"))
		}
		off += size
	}
	return 0
}

// lineCounter turns increasing byte offsets into 1-based line numbers in linear time.
type lineCounter struct {
	content []byte
	off     int
	line    int
}

func (c *lineCounter) at(off int) int {
	off = max(0, min(off, len(c.content)))
	if off < c.off { // offsets normally only grow; restart if not
		c.off, c.line = 0, 1
	}
	c.line += bytes.Count(c.content[c.off:off], []byte("\n"))
	c.off = off
	return c.line
}

// syntaxOffset is where a decoding error happened: the syntax error's offset when there is
// one, else (a file cut short) the start of the value the decoder was reading.
func syntaxOffset(err error, dec *json.Decoder, content []byte) int {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return int(syn.Offset)
	}
	off := int(dec.InputOffset())
	for off < len(content) && strings.IndexByte(" \t\r\n,", content[off]) >= 0 {
		off++
	}
	return off
}

func jsonMessage(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of file"
	}
	return err.Error()
}
