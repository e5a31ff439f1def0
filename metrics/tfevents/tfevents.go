package tfevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// FileVersion is the file_version of the first event of every file.
const FileVersion = "brain.Event:2"

// FilePrefix starts the name of every event file Create makes.
const FilePrefix = "events.out.tfevents."

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("tfevents: writer is closed")

// Scalar is one charted value: a tag ("train/loss") and its value at a step.
type Scalar struct {
	Tag   string
	Value float64
}

// Writer appends events to one event file. It is safe for concurrent use.
type Writer struct {
	mu   sync.Mutex
	w    io.Writer
	c    io.Closer // nil for NewWriter's writers
	path string
	now  func() time.Time
	err  error // the first write error; later calls return it
}

// Options configure a Writer.
type Options struct {
	// Now gives each event's wall_time; nil means time.Now.
	Now func() time.Time
}

// Create makes dir (and its parents) and a new event file in it, named
// events.out.tfevents.<unix seconds>.<host>.<pid>, and writes the file_version event.
// An existing file of that name is never overwritten: the new one takes the first free
// suffix .1, .2, … instead.
func Create(dir string, o Options) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tfevents: create %s: %w", dir, err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	base := filepath.Join(dir, FilePrefix+strconv.FormatInt(now().Unix(), 10)+"."+host+"."+strconv.Itoa(os.Getpid()))
	f, path, err := createFree(base)
	if err != nil {
		return nil, fmt.Errorf("tfevents: create event file: %w", err)
	}
	w, err := NewWriter(f, o)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tfevents: %s: %w", path, err)
	}
	w.c, w.path = f, path
	return w, nil
}

// maxSuffix bounds the ".<n>" suffixes createFree tries after base.
const maxSuffix = 1000

// createFree creates base, or base.1, base.2, … when a file of that name exists: one
// process that opens two writers within a second (a run resumed in the same process)
// gets two files, never one overwritten or refused.
func createFree(base string) (*os.File, string, error) {
	path := base
	for n := 1; ; n++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil || !errors.Is(err, os.ErrExist) || n > maxSuffix {
			return f, path, err
		}
		path = base + "." + strconv.Itoa(n)
	}
}

// NewWriter writes an event stream to w, starting with the file_version event.
func NewWriter(w io.Writer, o Options) (*Writer, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	ew := &Writer{w: w, now: now}
	if err := ew.record(appendEvent(nil, wallTime(now()), 0, FileVersion, nil)); err != nil {
		return nil, err
	}
	return ew, nil
}

// Path is the event file's path ("" for a Writer made by NewWriter).
func (w *Writer) Path() string { return w.path }

// Add writes one event at step holding the scalars, in their order. Nothing is written
// for an empty list.
func (w *Writer) Add(step int64, scalars ...Scalar) error {
	if len(scalars) == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	return w.record(appendEvent(nil, wallTime(w.now()), step, "", scalars))
}

// Start writes a SessionLog START event at step: TensorBoard then drops every point it
// read before with a step at or above it (for files of version 2, a restart is known only
// by this event). A resumed run calls it with the first step it charts, so the points a
// killed run logged after its last checkpoint disappear from the charts.
func (w *Writer) Start(step int64) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	b := appendEvent(nil, wallTime(w.now()), step, "", nil)
	status := binary.AppendUvarint(appendKey(nil, sessionStatus, wireVarint), sessionStart)
	return w.record(appendBytes(b, eventSessionLog, status))
}

// Close closes the file (for Create's writers) and makes later Adds fail.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		return nil
	}
	w.w = nil
	if w.c != nil {
		if err := w.c.Close(); err != nil {
			return fmt.Errorf("tfevents: close %s: %w", w.path, err)
		}
	}
	return nil
}

// record writes data as one TFRecord: length, its masked CRC, data, its masked CRC.
func (w *Writer) record(data []byte) error {
	buf := make([]byte, 0, len(data)+16)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(len(data)))
	buf = binary.LittleEndian.AppendUint32(buf, MaskedCRC(buf[:8]))
	buf = append(buf, data...)
	buf = binary.LittleEndian.AppendUint32(buf, MaskedCRC(data))
	if _, err := w.w.Write(buf); err != nil {
		w.err = fmt.Errorf("tfevents: write %s: %w", w.path, err)
		return w.err
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// MaskedCRC is the TFRecord checksum of b: its CRC32C, rotated right by 15 bits, plus
// 0xa282ead8.
func MaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// wallTime is t in seconds since the Unix epoch.
func wallTime(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

// Protobuf wire types and the fields of tensorflow.Event, Summary and Summary.Value.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5

	eventWallTime    = 1
	eventStep        = 2
	eventFileVersion = 3
	eventSummary     = 5
	eventSessionLog  = 7
	sessionStatus    = 1 // SessionLog.status, an enum
	sessionStart     = 1 // SessionLog.START
	summaryValue     = 1
	valueTag         = 1
	valueSimple      = 2
)

// appendEvent appends a tensorflow.Event: wall_time, step (when not 0), then
// file_version (when not "") or a summary of the scalars, fields in number order.
func appendEvent(b []byte, wall float64, step int64, fileVersion string, scalars []Scalar) []byte {
	b = appendKey(b, eventWallTime, wireFixed64)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(wall))
	if step != 0 {
		b = appendKey(b, eventStep, wireVarint)
		b = binary.AppendUvarint(b, uint64(step))
	}
	if fileVersion != "" {
		b = appendBytes(b, eventFileVersion, []byte(fileVersion))
	}
	if len(scalars) > 0 {
		var summary []byte
		for _, s := range scalars {
			var v []byte
			v = appendBytes(v, valueTag, []byte(s.Tag))
			v = appendKey(v, valueSimple, wireFixed32)
			v = binary.LittleEndian.AppendUint32(v, math.Float32bits(float32(s.Value)))
			summary = appendBytes(summary, summaryValue, v)
		}
		b = appendBytes(b, eventSummary, summary)
	}
	return b
}

// appendKey appends a field's key: its number and wire type.
func appendKey(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field)<<3|uint64(wire))
}

// appendBytes appends a length-delimited field (a string, bytes or a message).
func appendBytes(b []byte, field int, v []byte) []byte {
	b = appendKey(b, field, wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}
