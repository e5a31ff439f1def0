package safetensors

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// image builds a file image from a literal header and n data bytes.
func image(header string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, n)...)
}

func withLength(b []byte, n uint64) []byte {
	binary.LittleEndian.PutUint64(b, n)
	return b
}

func TestOpenRejectsCorruptFiles(t *testing.T) {
	const ok = `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`
	cases := []struct {
		name   string
		image  []byte
		want   error
		phrase string // must appear in the message, besides the path
	}{
		{"empty file", nil, ErrCorrupt, "shorter than the 8-byte"},
		{"short file", []byte{1, 2, 3}, ErrCorrupt, "shorter than the 8-byte"},
		{"length beyond file", withLength(image(ok, 8), 1000), ErrCorrupt, "larger than the"},
		{"absurd length", withLength(image(ok, 8), 1<<40), ErrCorrupt, "exceeds"},
		{"zero length", withLength(image(ok, 8), 0), ErrCorrupt, "does not start with '{'"},
		{"not JSON", image(`{"a":{"dtype":"F32",`, 0), ErrCorrupt, "not valid JSON"},
		{"JSON array", image(`[1,2,3]`, 0), ErrCorrupt, "does not start with '{'"},
		{"trailing garbage", image(ok+`x`, 8), ErrCorrupt, "after the header"},
		{"bad UTF-8", image("{\"\xff\":{}}", 0), ErrCorrupt, "UTF-8"},
		{"unknown dtype", image(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, 1), ErrUnsupportedDType, `"a"`},
		{"size mismatch", image(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8), ErrCorrupt, `tensor "a": F32 shape [3] needs 12 bytes`},
		{"beyond data", image(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), ErrCorrupt, `tensor "a": data_offsets [0, 8] go beyond`},
		{"begin after end", image(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}`, 4), ErrCorrupt, `tensor "a": invalid data_offsets`},
		{"negative offset", image(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[-2,0]}}`, 4), ErrCorrupt, `tensor "a": invalid data_offsets`},
		{"negative dim", image(`{"a":{"dtype":"U8","shape":[-2,-1],"data_offsets":[0,2]}}`, 2), ErrCorrupt, `tensor "a": negative dimension`},
		{"overflowing shape", image(`{"a":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,2]}}`, 2), ErrCorrupt, `tensor "a": shape`},
		{"overlap", image(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, 6), ErrCorrupt, `tensor "b": data_offsets [2, 6] overlap tensor "a"`},
		{"gap", image(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}`, 6), ErrCorrupt, `tensor "b": data_offsets [4, 6] leave a gap`},
		{"uncovered tail", image(ok, 12), ErrCorrupt, "cover 8 bytes but the data section has 12"},
		{"duplicate name", image(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), ErrCorrupt, `duplicate tensor name "a"`},
		{"three offsets", image(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, 1), ErrCorrupt, `tensor "a": data_offsets has 3 values`},
		{"missing shape", image(`{"a":{"dtype":"U8","data_offsets":[0,1]}}`, 1), ErrCorrupt, `tensor "a": entry needs`},
		{"fractional dim", image(`{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, 1), ErrCorrupt, `tensor "a": bad entry`},
		{"entry not object", image(`{"a":7}`, 0), ErrCorrupt, `tensor "a": bad entry`},
		{"metadata not strings", image(`{"__metadata__":{"k":1}}`, 0), ErrCorrupt, "__metadata__ must map strings"},
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
			if err := os.WriteFile(path, c.image, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatalf("case %d: Open succeeded", i)
			}
			msg := err.Error()
			if !errors.Is(err, c.want) || !strings.HasPrefix(msg, "safetensors:") ||
				!strings.Contains(msg, path) || !strings.Contains(msg, c.phrase) {
				t.Errorf("Open error = %q\nwant %v naming %s and saying %q", msg, c.want, path, c.phrase)
			}
		})
	}
}

// Truncating a valid file anywhere, or flipping any header byte, gives an error or a
// still-consistent file, never a panic.
func TestOpenTruncatedAndFlippedGolden(t *testing.T) {
	good, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	hdrEnd := 8 + int(binary.LittleEndian.Uint64(good))
	for n := 0; n < len(good); n += 7 {
		if _, err := Decode(good[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: Decode succeeded", n, len(good))
		}
	}
	buf := make([]byte, len(good))
	for i := 0; i < hdrEnd; i++ {
		copy(buf, good)
		buf[i] ^= 0x5a
		if f, err := Decode(buf); err == nil {
			exercise(t, f)
		}
	}
}

func TestOpenNonFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "missing.safetensors")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open(dir) = %v, want an error naming it", err)
	}
}

// exercise reads every tensor every way; errors are fine, panics and bad sizes are not.
func exercise(t testing.TB, f *File) {
	for _, name := range f.Names() {
		ti, ok := f.Info(name)
		b, err := f.Bytes(name)
		if !ok || err != nil {
			t.Fatalf("listed tensor %q: Info ok=%v, Bytes err=%v", name, ok, err)
		}
		if n := ti.NumElements() * int64(ti.DType.Size()); int64(len(b)) != n {
			t.Fatalf("tensor %q: %d bytes for %d elements of %s", name, len(b), ti.NumElements(), ti.DType)
		}
		f.Float32s(name)
		f.Float64s(name)
		f.Int64s(name)
	}
}
