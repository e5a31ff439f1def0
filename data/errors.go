package data

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns starts with "data:" and wraps one of
// them where one applies, so callers can test with errors.Is.
var (
	// ErrConfig reports an invalid reader, builder, collator or sampler configuration.
	ErrConfig = errors.New("data: invalid config")
	// ErrBadRecord reports a record that cannot be used (invalid JSON, missing field, wrong
	// type, unknown label, invalid UTF-8). The concrete error is a *RecordError naming the
	// file and line.
	ErrBadRecord = errors.New("data: bad record")
	// ErrEmpty reports a dataset with no usable record.
	ErrEmpty = errors.New("data: empty dataset")
	// ErrTooLong reports a sequence longer than the length it must fit (packing, a fixed
	// batch length).
	ErrTooLong = errors.New("data: sequence too long")
	// ErrCursor reports a resume position that does not belong to this dataset and sampler.
	ErrCursor = errors.New("data: invalid resume position")
)

// RecordError is a bad record: the file and 1-based line where the record starts, and why
// it was rejected. It wraps ErrBadRecord.
type RecordError struct {
	File   string
	Line   int
	Reason string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("data: %s:%d: %s", e.File, e.Line, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBadRecord) hold.
func (e *RecordError) Unwrap() error { return ErrBadRecord }

func badRecord(file string, line int, format string, args ...any) *RecordError {
	return &RecordError{File: file, Line: line, Reason: fmt.Sprintf(format, args...)}
}
