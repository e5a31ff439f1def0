package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Tensor is one tensor to write: its raw little-endian bytes and how to read them.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	// Data holds the bytes. Or, with Data nil, Stream writes them to w when the writer
	// reaches this tensor, once: a file is then written a piece at a time, never held
	// whole in memory. Stream must write exactly the elements of Shape in DType (the
	// writer counts); its error ends the write (Write and WriteSharded then leave
	// nothing behind; Encode's writer has what came before).
	Data   []byte
	Stream func(w io.Writer) error
}

// byteLen is the length of t's bytes, from its shape and dtype (t validated).
func (t Tensor) byteLen() int64 {
	n, _ := NumElements(t.Shape)
	return n * int64(t.DType.Size())
}

// writeTo writes t's bytes to w: Data, or what Stream writes, counted.
func (t Tensor) writeTo(w io.Writer) error {
	if t.Data != nil || t.Stream == nil {
		_, err := w.Write(t.Data)
		return err
	}
	c := &countingWriter{w: w}
	if err := t.Stream(c); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if want := t.byteLen(); c.n != want {
		return fmt.Errorf("tensor %q: %s shape %v needs %d bytes, Stream wrote %d", t.Name, t.DType, t.Shape, want, c.n)
	}
	return nil
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Write writes tensors and metadata to path as a safetensors file, atomically: the bytes
// go to a temporary file in the same directory, which is fsynced and renamed over path,
// and the directory is fsynced. On error (a full disk, say) path is left as it was and the
// temporary file is removed; the error names path.
//
// The layout is the reference one: the JSON header lists "__metadata__" first and then the
// tensors in sorted name order, is padded with spaces to a multiple of 8 bytes, and the
// tensors' bytes follow back to back in the same order.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	sorted, err := prepare(tensors, metadata)
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return writeAtomic(path, func(w io.Writer) error { return encodeSorted(w, sorted, metadata) })
}

// Encode writes tensors and metadata in the safetensors format to w (see Write for the
// layout). Nothing is written when the tensors do not validate.
func Encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	sorted, err := prepare(tensors, metadata)
	if err != nil {
		return fmt.Errorf("safetensors: encode: %w", err)
	}
	if err := encodeSorted(w, sorted, metadata); err != nil {
		return fmt.Errorf("safetensors: encode: %w", err)
	}
	return nil
}

// prepare validates the tensors and returns them sorted by name.
func prepare(tensors []Tensor, metadata map[string]string) ([]Tensor, error) {
	sorted := slices.Clone(tensors)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i, t := range sorted {
		switch {
		case t.Name == "":
			return nil, errors.New("tensor with an empty name")
		case !utf8.ValidString(t.Name):
			return nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		case t.Name == metadataKey:
			return nil, fmt.Errorf("tensor name %q is reserved", metadataKey)
		case i > 0 && sorted[i-1].Name == t.Name:
			return nil, fmt.Errorf("duplicate tensor name %q", t.Name)
		case !t.DType.Valid():
			return nil, fmt.Errorf("tensor %q: %w %q", t.Name, ErrUnsupportedDType, t.DType)
		}
		n, ok := NumElements(t.Shape)
		if !ok {
			return nil, fmt.Errorf("tensor %q: invalid shape %v", t.Name, t.Shape)
		}
		if want := n * int64(t.DType.Size()); (t.Data != nil || t.Stream == nil) && int64(len(t.Data)) != want {
			return nil, fmt.Errorf("tensor %q: %s shape %v needs %d bytes, Data has %d", t.Name, t.DType, t.Shape, want, len(t.Data))
		}
	}
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, fmt.Errorf("metadata entry %q is not valid UTF-8", k)
		}
	}
	return sorted, nil
}

func encodeSorted(w io.Writer, sorted []Tensor, metadata map[string]string) error {
	hdr := headerJSON(sorted, metadata)
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(hdr)))
	if _, err := w.Write(prefix[:]); err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	for _, t := range sorted {
		if err := t.writeTo(w); err != nil {
			return err
		}
	}
	return nil
}

// headerJSON renders the header, space-padded to a multiple of 8 bytes.
func headerJSON(sorted []Tensor, metadata map[string]string) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		b.WriteString(`"__metadata__":{`)
		keys := slices.Sorted(maps.Keys(metadata))
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(jsonString(k) + ":" + jsonString(metadata[k]))
		}
		b.WriteByte('}')
	}
	var off int64
	for i, t := range sorted {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		dims := make([]string, len(t.Shape))
		for j, d := range t.Shape {
			dims[j] = strconv.FormatInt(d, 10)
		}
		end := off + t.byteLen()
		fmt.Fprintf(&b, `%s:{"dtype":%s,"shape":[%s],"data_offsets":[%d,%d]}`,
			jsonString(t.Name), jsonString(string(t.DType)), strings.Join(dims, ","), off, end)
		off = end
	}
	b.WriteByte('}')
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// writeAtomic writes path through a synced temporary file and a rename.
func writeAtomic(path string, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("safetensors: write %s: %w", path, err)
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := fill(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
