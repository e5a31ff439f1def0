package tfevents

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// A record stream written by another TensorBoard writer (a Python one, with its clock
// fixed at 256.5 s) for: the file_version event, v/1 = 1.5 at step 1, v/22 = 16 at
// step 2. Every byte — framing, CRCs, field order, the step left out at 0 — must match.
const foreign = "\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK\"\t\x00\x00\x00\x00\x00\x08p@\x1a\rbrain.Event:2\xbc\x98!+" +
	"\x19\x00\x00\x00\x00\x00\x00\x00\x8b\xf1\x08(\t\x00\x00\x00\x00\x00\x08p@\x10\x01*\x0c\n\n\n\x03v/1\x15\x00\x00\xc0?,\xec\xc0\x87" +
	"\x1a\x00\x00\x00\x00\x00\x00\x00\x12\x9b\xd8-\t\x00\x00\x00\x00\x00\x08p@\x10\x02*\r\n\x0b\n\x04v/22\x15\x00\x00\x80A\x8f\xa3\xb6\x88"

func fixedClock() time.Time { return time.Unix(256, 500_000_000) }

func TestBytesMatchAnotherWriter(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(1, Scalar{"v/1", 1.5}); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(2, Scalar{"v/22", 16}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != foreign {
		t.Errorf("event stream differs from the other writer's:\n got %q\nwant %q", got, foreign)
	}
}

// CRC32C's check value (of "123456789") and the masked CRC of the 8-byte length 24 that
// starts most event files (the file_version event with a wall time): a3 7f 4b 22.
func TestMaskedCRCKnownVectors(t *testing.T) {
	if got := crc32.Checksum([]byte("123456789"), crc32.MakeTable(crc32.Castagnoli)); got != 0xe3069283 {
		t.Fatalf("CRC32C check value %#x", got)
	}
	if got := MaskedCRC([]byte{24, 0, 0, 0, 0, 0, 0, 0}); got != 0x224b7fa3 {
		t.Errorf("masked CRC of length 24: %#x, want 0x224b7fa3", got)
	}
}

// record is one TFRecord read back by readRecords.
type record struct{ data []byte }

// readRecords splits a TFRecord stream, checking each CRC by unmasking it (subtract the
// constant, rotate left 15) and comparing with hash/crc32's CRC32C of the bytes.
func readRecords(t *testing.T, b []byte) []record {
	t.Helper()
	table := crc32.MakeTable(crc32.Castagnoli)
	unmask := func(m uint32) uint32 { c := m - 0xa282ead8; return c<<15 | c>>17 }
	var out []record
	for len(b) > 0 {
		if len(b) < 12 {
			t.Fatalf("%d trailing bytes", len(b))
		}
		n := binary.LittleEndian.Uint64(b)
		if got, want := unmask(binary.LittleEndian.Uint32(b[8:])), crc32.Checksum(b[:8], table); got != want {
			t.Fatalf("record %d: length CRC %#x, want %#x", len(out), got, want)
		}
		if uint64(len(b)) < 16+n {
			t.Fatalf("record %d: length %d past the end", len(out), n)
		}
		data := b[12 : 12+n]
		if got, want := unmask(binary.LittleEndian.Uint32(b[12+n:])), crc32.Checksum(data, table); got != want {
			t.Fatalf("record %d: data CRC %#x, want %#x", len(out), got, want)
		}
		out = append(out, record{data})
		b = b[16+n:]
	}
	return out
}

// eventDescriptor builds tensorflow.Event, Summary and Summary.Value (the fields used
// here, numbered as TensorFlow's event.proto and summary.proto number them).
func eventDescriptor(t *testing.T) protoreflect.MessageDescriptor {
	t.Helper()
	field := func(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, msg string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(), Label: label.Enum()}
		if msg != "" {
			f.TypeName = proto.String(msg)
		}
		return f
	}
	opt, rep := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	fd := &descriptorpb.FileDescriptorProto{
		Name: proto.String("event_test.proto"), Package: proto.String("tensorflow"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Event"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("wall_time", 1, descriptorpb.FieldDescriptorProto_TYPE_DOUBLE, opt, ""),
				field("step", 2, descriptorpb.FieldDescriptorProto_TYPE_INT64, opt, ""),
				field("file_version", 3, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
				field("summary", 5, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, opt, ".tensorflow.Summary"),
				field("session_log", 7, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, opt, ".tensorflow.SessionLog"),
			},
		}, {
			// status is the enum SessionStatus (START = 1), a varint on the wire like int32.
			Name:  proto.String("SessionLog"),
			Field: []*descriptorpb.FieldDescriptorProto{field("status", 1, descriptorpb.FieldDescriptorProto_TYPE_INT32, opt, "")},
		}, {
			Name:  proto.String("Summary"),
			Field: []*descriptorpb.FieldDescriptorProto{field("value", 1, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE, rep, ".tensorflow.Summary.Value")},
			NestedType: []*descriptorpb.DescriptorProto{{
				Name: proto.String("Value"),
				Field: []*descriptorpb.FieldDescriptorProto{
					field("tag", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
					field("simple_value", 2, descriptorpb.FieldDescriptorProto_TYPE_FLOAT, opt, ""),
					field("node_name", 7, descriptorpb.FieldDescriptorProto_TYPE_STRING, opt, ""),
				},
			}},
		}},
	}
	file, err := protodesc.NewFile(fd, nil)
	if err != nil {
		t.Fatal(err)
	}
	return file.Messages().ByName("Event")
}

// event is a decoded tensorflow.Event.
type event struct {
	wall    float64
	step    int64
	version string
	start   bool
	tags    []string
	values  []float32
}

// decode parses every record with the protobuf runtime's decoder; unknown fields fail.
func decode(t *testing.T, md protoreflect.MessageDescriptor, recs []record) []event {
	t.Helper()
	var out []event
	for i, r := range recs {
		m := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(r.data, m); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if len(m.GetUnknown()) > 0 {
			t.Fatalf("record %d has unknown fields %x", i, m.GetUnknown())
		}
		f := md.Fields()
		e := event{wall: m.Get(f.ByName("wall_time")).Float(), step: m.Get(f.ByName("step")).Int(),
			version: m.Get(f.ByName("file_version")).String()}
		if m.Has(f.ByName("session_log")) {
			sl := m.Get(f.ByName("session_log")).Message()
			e.start = sl.Get(sl.Descriptor().Fields().ByName("status")).Int() == 1
		}
		if m.Has(f.ByName("summary")) {
			s := m.Get(f.ByName("summary")).Message()
			vals := s.Get(s.Descriptor().Fields().ByName("value")).List()
			for j := 0; j < vals.Len(); j++ {
				v := vals.Get(j).Message()
				vf := v.Descriptor().Fields()
				e.tags = append(e.tags, v.Get(vf.ByName("tag")).String())
				e.values = append(e.values, float32(v.Get(vf.ByName("simple_value")).Float()))
			}
		}
		out = append(out, e)
	}
	return out
}

func TestCreateDecodesWithProtobufRuntime(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tb")
	clock := time.Unix(1_700_000_000, 250_000_000)
	w, err := Create(dir, Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(w.Path())
	host, _ := os.Hostname()
	if want := FilePrefix + "1700000000."; !strings.HasPrefix(base, want) || !strings.Contains(base, host) {
		t.Errorf("file name %q, want %s<host>.<pid>", base, want)
	}
	steps := []struct {
		step int64
		s    []Scalar
	}{
		{5, nil}, // Start(5)
		{1, []Scalar{{"train/loss", 2.5}, {"train/lr", 1e-4}}},
		{0, []Scalar{{"zero step", -3}}},
		{1 << 40, []Scalar{{"train/grad_norm", math.Inf(1)}}},
		{-7, []Scalar{{"λ/ünïcode", math.Pi}}},
	}
	for _, s := range steps {
		add := w.Add
		if s.s == nil {
			add = func(step int64, _ ...Scalar) error { return w.Start(step) }
		}
		if err := add(s.step, s.s...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add(9); err != nil {
		t.Errorf("empty Add: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(10, Scalar{"x", 1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	raw, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	evs := decode(t, eventDescriptor(t), readRecords(t, raw))
	if len(evs) != 1+len(steps) {
		t.Fatalf("%d events, want %d", len(evs), 1+len(steps))
	}
	if evs[0].version != FileVersion || evs[0].wall != 1_700_000_000.25 || len(evs[0].tags) != 0 {
		t.Errorf("first event %+v", evs[0])
	}
	for i, s := range steps {
		e := evs[i+1]
		if e.step != s.step || e.wall != 1_700_000_000.25 || e.version != "" || len(e.tags) != len(s.s) || e.start != (s.s == nil) {
			t.Fatalf("event %d: %+v, want step %d with %v", i+1, e, s.step, s.s)
		}
		for j, sc := range s.s {
			// simple_value is a float32: the value comes back rounded to float32 exactly.
			if e.tags[j] != sc.Tag || e.values[j] != float32(sc.Value) {
				t.Errorf("event %d value %d: %q = %v, want %q = %v", i+1, j, e.tags[j], e.values[j], sc.Tag, float32(sc.Value))
			}
		}
	}
	// Read agrees with the protobuf runtime on every event.
	mine, err := ReadFile(w.Path())
	if err != nil || len(mine) != len(evs) {
		t.Fatalf("ReadFile: %d events, %v", len(mine), err)
	}
	for i, e := range evs {
		m := mine[i]
		if m.WallTime != e.wall || m.Step != e.step || m.FileVersion != e.version || len(m.Scalars) != len(e.tags) || m.Start != e.start {
			t.Fatalf("ReadFile event %d: %+v, protobuf runtime: %+v", i, m, e)
		}
		for j := range e.tags {
			if m.Scalars[j].Tag != e.tags[j] || m.Scalars[j].Value != float64(e.values[j]) {
				t.Errorf("ReadFile event %d value %d: %+v, protobuf runtime: %q = %v", i, j, m.Scalars[j], e.tags[j], e.values[j])
			}
		}
	}
	// Two more writers in the same second, host and pid: each gets a file of its own
	// and the first file is left as it was.
	before, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{w.Path(): true}
	for i := 0; i < 2; i++ {
		w2, err := Create(dir, Options{Now: func() time.Time { return clock }})
		if err != nil {
			t.Fatalf("Create %d in the same second: %v", i+2, err)
		}
		if seen[w2.Path()] {
			t.Errorf("Create %d reused %s", i+2, w2.Path())
		}
		seen[w2.Path()] = true
		if err := w2.Close(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := os.ReadFile(w.Path())
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the first file changed when later writers were created (err %v)", err)
	}
}

// failing is a writer whose writes fail after the first n.
type failing struct{ n int }

func (f *failing) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk full")
	}
	f.n--
	return len(p), nil
}

func TestWriteErrorsStick(t *testing.T) {
	if _, err := NewWriter(&failing{}, Options{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("file_version write: %v", err)
	}
	w, err := NewWriter(&failing{n: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := w.Add(1, Scalar{"a", 1}); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("Add %d after a failed write: %v", i, err)
		}
	}
}

// Read decodes the other writer's stream, and reports a flipped byte or a cut record
// as ErrCorrupt with the events before it.
func TestReadAnotherWritersStream(t *testing.T) {
	evs, err := Read(strings.NewReader(foreign))
	if err != nil {
		t.Fatal(err)
	}
	want := []Event{{WallTime: 256.5, FileVersion: FileVersion},
		{WallTime: 256.5, Step: 1, Scalars: []Scalar{{"v/1", 1.5}}},
		{WallTime: 256.5, Step: 2, Scalars: []Scalar{{"v/22", 16}}}}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i := range want {
		g, w := evs[i], want[i]
		if g.WallTime != w.WallTime || g.Step != w.Step || g.FileVersion != w.FileVersion || len(g.Scalars) != len(w.Scalars) ||
			(len(w.Scalars) == 1 && g.Scalars[0] != w.Scalars[0]) {
			t.Errorf("event %d: %+v, want %+v", i, g, w)
		}
	}
	third := len(foreign) - 42 // the third record is 42 bytes: 16 of framing, 26 of data
	for name, b := range map[string]string{
		"flipped data byte": foreign[:third+20] + "\xff" + foreign[third+21:],
		"cut record":        foreign[:len(foreign)-3],
	} {
		evs, err := Read(strings.NewReader(b))
		if !errors.Is(err, ErrCorrupt) || len(evs) != 2 {
			t.Errorf("%s: %d events, %v", name, len(evs), err)
		}
	}
}
