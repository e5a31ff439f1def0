package safetensors

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// lazy returns ts with each tensor's bytes behind Produce instead of Data, and the
// names in the order Produce was called.
func lazy(ts []Tensor) ([]Tensor, *[]string) {
	var calls []string
	out := make([]Tensor, len(ts))
	for i, t := range ts {
		data := t.Data
		t.Data = nil
		t.Produce = func() ([]byte, error) {
			calls = append(calls, t.Name)
			return slices.Clone(data), nil
		}
		out[i] = t
	}
	return out, &calls
}

// Tensors whose bytes come from Produce are written to the same bytes as with Data,
// each produced once, in the file's order; single files and shards alike.
func TestProduceWritesTheSameBytes(t *testing.T) {
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
		t.Fatal("a file written through Produce differs from the one written from Data")
	}
	var names []string
	for _, x := range eager {
		names = append(names, x.Name)
	}
	slices.Sort(names)
	if !slices.Equal(*calls, names) {
		t.Fatalf("Produce calls %v, want each tensor once in the file's order %v", *calls, names)
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
		t.Fatalf("%d files written from Data, %d through Produce; want the same, and several shards", len(ea), len(la))
	}
	for _, e := range ea {
		a, _ := os.ReadFile(filepath.Join(dir, "eager", e.Name()))
		b, err := os.ReadFile(filepath.Join(dir, "lazy", e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs between the shards written from Data and through Produce (%v)", e.Name(), err)
		}
	}
}

// A Produce that fails, or makes the wrong number of bytes, ends the write with an
// error naming the tensor, and the file that was there is left as it was.
func TestProduceErrorsLeaveTheFileAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	old := []Tensor{{Name: "x", DType: U8, Shape: []int64{1}, Data: []byte{42}}}
	if err := Write(path, old, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	boom := errors.New("boom")
	for _, c := range []struct {
		name    string
		produce func() ([]byte, error)
		want    string
	}{
		{"error", func() ([]byte, error) { return nil, boom }, "boom"},
		{"short", func() ([]byte, error) { return []byte{1, 2, 3}, nil }, "Produce made 3"},
	} {
		ts := []Tensor{
			{Name: "a", DType: U8, Shape: []int64{2}, Data: []byte{1, 2}},
			{Name: "b", DType: F32, Shape: []int64{1}, Produce: c.produce},
		}
		err := Write(path, ts, nil)
		if err == nil || !strings.Contains(err.Error(), `"b"`) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Write returned %v, want an error naming tensor \"b\" and saying %q", c.name, err, c.want)
		}
		if c.name == "error" && !errors.Is(err, boom) {
			t.Errorf("%s: %v does not wrap Produce's error", c.name, err)
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
