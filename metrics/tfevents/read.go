package tfevents

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrCorrupt marks an event stream that is not a valid TFRecord stream of tf.Events.
var ErrCorrupt = errors.New("tfevents: corrupt event stream")

// Event is one decoded tensorflow.Event: the fields Writer writes.
type Event struct {
	WallTime    float64
	Step        int64
	FileVersion string
	Start       bool     // a SessionLog START event (Writer.Start)
	Scalars     []Scalar // the summary's simple values, float32 widened to float64
}

// ReadFile reads every event of an event file (Read).
func ReadFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tfevents: %w", err)
	}
	defer f.Close()
	evs, err := Read(f)
	if err != nil {
		return evs, fmt.Errorf("%s: %w", path, err)
	}
	return evs, nil
}

// Read decodes a TFRecord stream of tf.Events, checking both CRCs of every record.
// Summary values other than simple_value, and fields Writer does not write, are
// skipped. A stream cut inside a record (a writer killed mid-write) is ErrCorrupt, with
// the events before it.
func Read(r io.Reader) ([]Event, error) {
	var out []Event
	var head [12]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err == io.EOF {
			return out, nil
		} else if err != nil {
			return out, fmt.Errorf("%w: record %d header: %w", ErrCorrupt, len(out), err)
		}
		if MaskedCRC(head[:8]) != binary.LittleEndian.Uint32(head[8:]) {
			return out, fmt.Errorf("%w: record %d: length CRC mismatch", ErrCorrupt, len(out))
		}
		n := binary.LittleEndian.Uint64(head[:8])
		if n > 1<<30 {
			return out, fmt.Errorf("%w: record %d: length %d", ErrCorrupt, len(out), n)
		}
		data := make([]byte, n+4)
		if _, err := io.ReadFull(r, data); err != nil {
			return out, fmt.Errorf("%w: record %d data: %w", ErrCorrupt, len(out), err)
		}
		if MaskedCRC(data[:n]) != binary.LittleEndian.Uint32(data[n:]) {
			return out, fmt.Errorf("%w: record %d: data CRC mismatch", ErrCorrupt, len(out))
		}
		ev, err := decodeEvent(data[:n])
		if err != nil {
			return out, fmt.Errorf("%w: record %d: %w", ErrCorrupt, len(out), err)
		}
		out = append(out, ev)
	}
}

// fields walks a message's fields, calling f with each number, wire type and value
// (the varint, the fixed bits, or the bytes).
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v uint64, bytes []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v uint64
		var bs []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v32 uint32
			v32, n = protowire.ConsumeFixed32(b)
			v = uint64(v32)
		case protowire.BytesType:
			bs, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, bs); err != nil {
			return err
		}
	}
	return nil
}

func decodeEvent(b []byte) (Event, error) {
	var ev Event
	err := fields(b, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
		switch {
		case num == eventWallTime && typ == protowire.Fixed64Type:
			ev.WallTime = math.Float64frombits(v)
		case num == eventStep && typ == protowire.VarintType:
			ev.Step = int64(v)
		case num == eventFileVersion && typ == protowire.BytesType:
			ev.FileVersion = string(bs)
		case num == eventSessionLog && typ == protowire.BytesType:
			return fields(bs, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
				if num == sessionStatus && typ == protowire.VarintType && v == sessionStart {
					ev.Start = true
				}
				return nil
			})
		case num == eventSummary && typ == protowire.BytesType:
			return fields(bs, func(num protowire.Number, typ protowire.Type, _ uint64, val []byte) error {
				if num != summaryValue || typ != protowire.BytesType {
					return nil
				}
				var s Scalar
				simple := false
				err := fields(val, func(num protowire.Number, typ protowire.Type, v uint64, bs []byte) error {
					switch {
					case num == valueTag && typ == protowire.BytesType:
						s.Tag = string(bs)
					case num == valueSimple && typ == protowire.Fixed32Type:
						s.Value, simple = float64(math.Float32frombits(uint32(v))), true
					}
					return nil
				})
				if err == nil && simple {
					ev.Scalars = append(ev.Scalars, s)
				}
				return err
			})
		}
		return nil
	})
	return ev, err
}
