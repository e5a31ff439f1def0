package data

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// object is one JSON record being checked field by field.
type object struct {
	fields map[string]json.RawMessage
	file   string
	line   int
}

// parseObject turns one JSON value into a Record of the reader's format.
func (r *reader) parseObject(file string, line int, raw []byte) (Record, *RecordError) {
	o := object{file: file, line: line}
	if bad := invalidUTF8Line(raw); bad > 0 {
		// encoding/json would quietly turn the bytes into U+FFFD: a wrongly encoded file.
		return Record{}, badRecord(file, line+bad-1, "invalid UTF-8 (is the file in another encoding?)")
	}
	if t := jsonType(raw); t != "object" {
		if !json.Valid(raw) {
			var v any
			err := json.Unmarshal(raw, &v)
			return Record{}, badRecord(file, line, "invalid JSON: %s", jsonMessage(err))
		}
		return Record{}, badRecord(file, line, "record is a JSON %s, want an object", t)
	}
	if err := json.Unmarshal(raw, &o.fields); err != nil {
		return Record{}, badRecord(file, line, "invalid JSON: %s", jsonMessage(err))
	}
	rec := Record{Kind: r.cfg.Format.Kind(), File: file, Line: line}
	var e *RecordError
	switch r.cfg.Format {
	case AlpacaJSON, AlpacaJSONL:
		e = o.instruction(&rec)
	case CommonsenseJSON, CommonsenseJSONL:
		if e = o.instruction(&rec); e == nil {
			rec.Answer, _, e = o.str("answer", true)
		}
	case ClassificationJSONL:
		if e = o.texts(&rec); e == nil {
			e = r.label(o, &rec)
		}
	}
	return rec, e
}

// instruction reads instruction and output (required) and input (optional: a missing or
// null input is the empty string, the no-input case).
func (o object) instruction(rec *Record) *RecordError {
	var e *RecordError
	if rec.Instruction, _, e = o.str("instruction", true); e != nil {
		return e
	}
	if rec.Input, _, e = o.str("input", false); e != nil {
		return e
	}
	rec.Output, _, e = o.str("output", true)
	return e
}

// texts reads "sentence1" + "sentence2" when sentence1 is present, else "text" or
// "sentence".
func (o object) texts(rec *Record) *RecordError {
	var e *RecordError
	var ok bool
	if rec.Text, ok, e = o.str("sentence1", false); e != nil || ok {
		if e == nil {
			rec.TextPair, _, e = o.str("sentence2", true)
			rec.HasPair = true
		}
		return e
	}
	if rec.Text, ok, e = o.str("text", false); e != nil || ok {
		return e
	}
	if rec.Text, ok, e = o.str("sentence", false); e != nil || ok {
		return e
	}
	return badRecord(o.file, o.line, `missing field "text" (or "sentence", or "sentence1" and "sentence2")`)
}

// str reads a string field. A null field counts as missing.
func (o object) str(name string, required bool) (string, bool, *RecordError) {
	raw, ok := o.fields[name]
	if !ok || jsonType(raw) == "null" {
		if required {
			return "", false, badRecord(o.file, o.line, "missing field %q", name)
		}
		return "", false, nil
	}
	var s string
	if t := jsonType(raw); t != "string" {
		return "", false, badRecord(o.file, o.line, "field %q is a %s, want a string", name, t)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, badRecord(o.file, o.line, "field %q: %v", name, err)
	}
	return s, true, nil
}

// label reads "label": an integer class index, a float score (Regression), or a string
// mapped through the configured label list.
func (r *reader) label(o object, rec *Record) *RecordError {
	raw, ok := o.fields["label"]
	if !ok || jsonType(raw) == "null" {
		return badRecord(o.file, o.line, `missing field "label"`)
	}
	switch t := jsonType(raw); t {
	case "string":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return badRecord(o.file, o.line, "field \"label\": %v", err)
		}
		if r.cfg.Regression {
			return badRecord(o.file, o.line, "label %q is a string, want a number (regression)", s)
		}
		if len(r.cfg.Labels) == 0 {
			return badRecord(o.file, o.line, "string label %q needs a label list (labels in the config)", s)
		}
		idx, known := r.labelOf[s]
		if !known {
			return badRecord(o.file, o.line, "unknown label %q (known: %s)", s, strings.Join(r.cfg.Labels, ", "))
		}
		rec.Label = idx
	case "number":
		v, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
		if err != nil || math.IsInf(v, 0) {
			return badRecord(o.file, o.line, "label %s is not a finite number", raw)
		}
		if r.cfg.Regression {
			rec.Score = v
			return nil
		}
		if v != math.Trunc(v) || math.Abs(v) > 1<<31 {
			return badRecord(o.file, o.line, "label %s is not an integer class index (set regression for scores)", raw)
		}
		idx := int(v)
		if idx < 0 {
			return badRecord(o.file, o.line, "label %d is negative", idx)
		}
		if len(r.cfg.Labels) > 0 && idx >= len(r.cfg.Labels) {
			return badRecord(o.file, o.line, "label %d out of range (%d labels: %s)", idx,
				len(r.cfg.Labels), strings.Join(r.cfg.Labels, ", "))
		}
		rec.Label = idx
	default:
		return badRecord(o.file, o.line, "field \"label\" is a %s, want a number or a string", t)
	}
	return nil
}

// jsonType names the JSON type of a value from its first byte.
func jsonType(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "empty value"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "number"
	}
	return "invalid value"
}
