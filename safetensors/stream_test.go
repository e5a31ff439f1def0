package safetensors

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// lazy returns ts with each tensor's bytes behind Stream instead of Data, written a
// byte at a time, and the names in the order Stream was called.
func lazy(ts []Tensor) ([]Tensor, *[]string) {
	var calls []string
	out := make([]Tensor, len(ts))
	for i, t := range ts {
		data := t.Data
		t.Data = nil
		t.Stream = func(w io.Writer) error {
			calls = append(calls, t.Name)
			for j := range data {
				if _, err := w.Write(data[j : j+1]); err != nil {
					return err
				}
			}
			return nil
		}
		out[i] = t
	}
	return out, &calls
}

// Tensors whose bytes come from Stream are written to the same bytes as with Data,
// each streamed once, in the file's order; single files and shards alike.
func TestStreamWritesTheSameBytes(t *testing.T) {
	dir := t.TempDir()
	eager := sampleTensors(t)
	lazyTs, calls := lazy(eager)
	meta := map[string]string{"format": "pt"}
	if err := Write(filepath.Join(dir, "eager.safetensors"), eager, meta); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(dir, "lazy.safetensors"), lazyTs, meta); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "eager.safetensors"))
	b, _ := os.ReadFile(filepath.Join(dir, "lazy.safetensors"))
	if !bytes.Equal(a, b) {
		t.Fatal("a file written through Stream differs from the one written from Data")
	}
	var names []string
	for _, x := range eager {
		names = append(names, x.Name)
	}
	slices.Sort(names)
	if !slices.Equal(*calls, names) {
		t.Fatalf("Stream calls %v, want each tensor once in the file's order %v", *calls, names)
	}

	// Shards: the groups are made from the tensors' sizes (their shapes), before any
	// bytes exist.
	for _, c := range []struct {
		name string
		ts   []Tensor
	}{{"eager", eager}, {"lazy", nil}} {
		ts := c.ts
		if ts == nil {
			ts, _ = lazy(eager)
		}
		if err := os.Mkdir(filepath.Join(dir, c.name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteSharded(filepath.Join(dir, c.name), ts, 20, meta); err != nil {
			t.Fatal(err)
		}
	}
	ea, _ := os.ReadDir(filepath.Join(dir, "eager"))
	la, _ := os.ReadDir(filepath.Join(dir, "lazy"))
	if len(ea) < 3 || len(ea) != len(la) {
		t.Fatalf("%d files written from Data, %d through Stream; want the same, and several shards", len(ea), len(la))
	}
	for _, e := range ea {
		a, _ := os.ReadFile(filepath.Join(dir, "eager", e.Name()))
		b, err := os.ReadFile(filepath.Join(dir, "lazy", e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the shards written from Data and through Stream (%v)", e.Name(), err)
		}
	}
}

// A Stream that fails, or writes the wrong number of bytes, ends the write with an
// error naming the tensor, and the file that was there is left as it was.
func TestStreamErrorsLeaveTheFileAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	old := []Tensor{{Name: "x", DType: U8, Shape: []int64{1}, Data: []byte{42}}}
	if err := Write(path, old, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	boom := errors.New("boom")
	for _, c := range []struct {
		name   string
		stream func(io.Writer) error
		want   string
	}{
		{"error", func(w io.Writer) error { w.Write([]byte{1}); return boom }, "boom"},
		{"short", func(w io.Writer) error { _, err := w.Write([]byte{1, 2, 3}); return err }, "Stream wrote 3"},
	} {
		ts := []Tensor{
			{Name: "a", DType: U8, Shape: []int64{2}, Data: []byte{1, 2}},
			{Name: "b", DType: F32, Shape: []int64{1}, Stream: c.stream},
		}
		err := Write(path, ts, nil)
		if err == nil || !strings.Contains(err.Error(), `"b"`) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Write returned %v, want an error naming tensor \"b\" and saying %q", c.name, err, c.want)
		}
		if c.name == "error" && !errors.Is(err, boom) {
			t.Errorf("%s: %v does not wrap Stream's error", c.name, err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(after, before) {
			t.Errorf("%s: the file changed after a failed write", c.name)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("%s: %d entries in the directory after a failed write, want the file alone", c.name, len(entries))
		}
	}
}
