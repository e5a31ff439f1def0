package safetensors

import (
	"fmt"
	"maps"
	"os"
	"slices"
)

// File is an open safetensors file. Tensor bytes are views into a read-only memory
// mapping of the file: nothing is copied until a conversion (Float32s, ...) asks for it.
// A File is safe for concurrent readers; Close must not race with them.
type File struct {
	path   string
	hdr    *header
	data   []byte // the data section, a view into mapped
	mapped []byte // the whole mapping; nil for a File made by Decode
	closed bool
}

// Open memory-maps the safetensors file at path and validates its header: the length
// prefix, the JSON, every dtype, shape and offset, and that the tensors cover the data
// section contiguously. Close releases the mapping.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: open: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors: open: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s: not a regular file", ErrCorrupt, path)
	}
	if st.Size() < 8 {
		return nil, fmt.Errorf("%w: %s: file is %d bytes, shorter than the 8-byte header length", ErrCorrupt, path, st.Size())
	}
	if int64(int(st.Size())) != st.Size() {
		return nil, fmt.Errorf("safetensors: open %s: %d bytes do not fit in the address space", path, st.Size())
	}
	mapped, err := mapFile(f, int(st.Size()))
	if err != nil {
		return nil, fmt.Errorf("safetensors: map %s: %w", path, err)
	}
	file, err := newFile(path, mapped)
	if err != nil {
		_ = unmapFile(mapped)
		return nil, err
	}
	file.mapped = mapped
	return file, nil
}

// Decode parses a safetensors image held in memory. The File's tensor bytes are views into
// data, which must not be modified while the File is in use. Close is a no-op.
func Decode(data []byte) (*File, error) {
	return newFile("<memory>", data)
}

func newFile(path string, image []byte) (*File, error) {
	hdr, start, err := parseHeader(path, image)
	if err != nil {
		return nil, err
	}
	return &File{path: path, hdr: hdr, data: image[start:]}, nil
}

// Path returns the file's path ("<memory>" for a File made by Decode).
func (f *File) Path() string { return f.path }

// Names returns the tensor names in sorted order.
func (f *File) Names() []string { return slices.Clone(f.hdr.names) }

// Len returns the number of tensors.
func (f *File) Len() int { return len(f.hdr.names) }

// Info returns the dtype, shape and offsets of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	ti, ok := f.hdr.infos[name]
	if ok {
		ti.Shape = slices.Clone(ti.Shape)
	}
	return ti, ok
}

// Metadata returns a copy of the header's "__metadata__" map (nil when there is none).
func (f *File) Metadata() map[string]string { return maps.Clone(f.hdr.metadata) }

// Bytes returns the raw little-endian bytes of the named tensor. The slice is a view into
// the file mapping: it is read-only (writing to it faults) and invalid after Close.
func (f *File) Bytes(name string) ([]byte, error) {
	if f.closed {
		return nil, fmt.Errorf("%w: %s", ErrClosed, f.path)
	}
	ti, ok := f.hdr.infos[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q in %s", ErrNotFound, name, f.path)
	}
	return f.data[ti.Offsets[0]:ti.Offsets[1]:ti.Offsets[1]], nil
}

// Release gives the named tensor's pages back: they leave this process's mapping, and
// with it the process's resident set, while the kernel's page cache keeps them, so a
// later Bytes reads the same bytes again (faulted in from the cache). A loader calls it
// once it has copied a tensor, so that a checkpoint read in full does not stay resident
// beside its copies until Close. The pages at either end may hold a neighbour's bytes
// too; those are read again the same way when needed. Nothing to do for a File made by
// Decode or where files are read instead of mapped. The error (the kernel refusing, as
// for locked memory) leaves the mapping as it was: callers may treat it as advisory.
func (f *File) Release(name string) error {
	if f.closed {
		return fmt.Errorf("%w: %s", ErrClosed, f.path)
	}
	ti, ok := f.hdr.infos[name]
	if !ok {
		return fmt.Errorf("%w: %q in %s", ErrNotFound, name, f.path)
	}
	if f.mapped == nil || ti.Offsets[1] == ti.Offsets[0] {
		return nil
	}
	page := int64(os.Getpagesize())
	start := int64(len(f.mapped)-len(f.data)) + ti.Offsets[0]
	lo := start / page * page
	hi := min(int64(len(f.mapped)), (start+ti.Offsets[1]-ti.Offsets[0]+page-1)/page*page)
	if err := releasePages(f.mapped[lo:hi]); err != nil {
		return fmt.Errorf("safetensors: release %q in %s: %w", name, f.path, err)
	}
	return nil
}

// Float32s converts the named F32, F16, BF16 or F64 tensor to a new []float32.
func (f *File) Float32s(name string) ([]float32, error) { return float32sOf(f, name) }

// Float64s converts the named F64, F32, F16 or BF16 tensor to a new []float64.
func (f *File) Float64s(name string) ([]float64, error) { return float64sOf(f, name) }

// Int64s converts the named integer or BOOL tensor to a new []int64.
func (f *File) Int64s(name string) ([]int64, error) { return int64sOf(f, name) }

// Close unmaps the file. Slices returned by Bytes must not be used afterwards.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if f.mapped == nil {
		return nil
	}
	m := f.mapped
	f.mapped, f.data = nil, nil
	if err := unmapFile(m); err != nil {
		return fmt.Errorf("safetensors: unmap %s: %w", f.path, err)
	}
	return nil
}

// Reader is what a single File and a sharded Index have in common.
type Reader interface {
	Names() []string
	Info(name string) (TensorInfo, bool)
	Bytes(name string) ([]byte, error)
	Release(name string) error
	Close() error
}

var (
	_ Reader = (*File)(nil)
	_ Reader = (*Index)(nil)
)
