package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"
)

// MaxHeaderSize is the largest JSON header accepted, as in the reference implementation
// (100 MB). A larger length prefix means the file is not a safetensors file.
const MaxHeaderSize = 100_000_000

const metadataKey = "__metadata__"

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	DType DType
	Shape []int64
	// Offsets are [begin, end) in bytes, relative to the start of the data section.
	Offsets [2]int64
}

// NumElements returns the number of elements (1 for a scalar).
func (ti TensorInfo) NumElements() int64 {
	n, _ := NumElements(ti.Shape)
	return n
}

// ByteSize returns end - begin.
func (ti TensorInfo) ByteSize() int64 { return ti.Offsets[1] - ti.Offsets[0] }

// header is a parsed and validated file header.
type header struct {
	infos    map[string]TensorInfo
	names    []string // sorted
	metadata map[string]string
	dataLen  int64
}

type rawInfo struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// parseHeader validates the framing of a whole file image and its header. src names the
// file in errors. It returns the header and the offset at which the data section starts.
func parseHeader(src string, data []byte) (*header, int64, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, src, fmt.Sprintf(format, args...))
	}
	if len(data) < 8 {
		return nil, 0, corrupt("file is %d bytes, shorter than the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data[:8])
	if n > MaxHeaderSize {
		return nil, 0, corrupt("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, 0, corrupt("header length %d is larger than the %d bytes after the length prefix", n, len(data)-8)
	}
	raw := data[8 : 8+n]
	if !utf8.Valid(raw) {
		return nil, 0, corrupt("header is not valid UTF-8")
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil, 0, corrupt("header does not start with '{'")
	}
	h, err := decodeHeader(raw)
	if errors.Is(err, errUnknownDType) {
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrUnsupportedDType, src, err)
	}
	if err != nil {
		return nil, 0, corrupt("%v", err)
	}
	h.dataLen = int64(len(data)) - 8 - int64(n)
	if err := h.validate(); err != nil {
		return nil, 0, corrupt("%v", err)
	}
	return h, 8 + int64(n), nil
}

// decodeHeader reads the top-level JSON object entry by entry, so that duplicate names are
// caught (a map would keep only the last one).
func decodeHeader(raw []byte) (*header, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("header is not a JSON object")
	}
	h := &header{infos: map[string]TensorInfo{}}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("header is not valid JSON: %v", err)
		}
		name, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, fmt.Errorf("header is not valid JSON: %v", err)
		}
		if name == metadataKey {
			if seenMeta {
				return nil, fmt.Errorf("duplicate %s entry", metadataKey)
			}
			seenMeta = true
			if err := json.Unmarshal(value, &h.metadata); err != nil {
				return nil, fmt.Errorf("%s must map strings to strings: %v", metadataKey, err)
			}
			continue
		}
		if _, dup := h.infos[name]; dup {
			return nil, fmt.Errorf("duplicate tensor name %q", name)
		}
		info, err := decodeInfo(name, value)
		if err != nil {
			return nil, err
		}
		h.infos[name] = info
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("header is not valid JSON: %v", err)
	}
	// Only whitespace (the writer's space padding) may follow the object.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the header's JSON object")
	}
	return h, nil
}

func decodeInfo(name string, value json.RawMessage) (TensorInfo, error) {
	var ri rawInfo
	if err := json.Unmarshal(value, &ri); err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: bad entry: %v", name, err)
	}
	if ri.DType == nil || ri.Shape == nil || ri.DataOffsets == nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: entry needs dtype, shape and data_offsets", name)
	}
	dt := DType(*ri.DType)
	if !dt.Valid() {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w %q", name, errUnknownDType, *ri.DType)
	}
	if len(*ri.DataOffsets) != 2 {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets has %d values, want 2", name, len(*ri.DataOffsets))
	}
	shape := *ri.Shape
	if shape == nil {
		shape = []int64{}
	}
	return TensorInfo{DType: dt, Shape: shape, Offsets: [2]int64{(*ri.DataOffsets)[0], (*ri.DataOffsets)[1]}}, nil
}

// validate checks every entry against the data section and checks that the tensors cover
// it exactly, back to back, as the reference implementation requires.
func (h *header) validate() error {
	h.names = make([]string, 0, len(h.infos))
	for name, ti := range h.infos {
		h.names = append(h.names, name)
		for _, d := range ti.Shape {
			if d < 0 {
				return fmt.Errorf("tensor %q: negative dimension in shape %v", name, ti.Shape)
			}
		}
		n, ok := NumElements(ti.Shape)
		if !ok {
			return fmt.Errorf("tensor %q: shape %v overflows", name, ti.Shape)
		}
		b, e := ti.Offsets[0], ti.Offsets[1]
		if b < 0 || e < b {
			return fmt.Errorf("tensor %q: invalid data_offsets [%d, %d]", name, b, e)
		}
		if e > h.dataLen {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] go beyond the %d-byte data section", name, b, e, h.dataLen)
		}
		if want := n * int64(ti.DType.Size()); e-b != want {
			return fmt.Errorf("tensor %q: %s shape %v needs %d bytes, data_offsets [%d, %d] hold %d",
				name, ti.DType, ti.Shape, want, b, e, e-b)
		}
	}
	sort.Strings(h.names)
	return h.checkCoverage()
}

func (h *header) checkCoverage() error {
	order := append([]string(nil), h.names...)
	sort.SliceStable(order, func(i, j int) bool {
		a, b := h.infos[order[i]].Offsets, h.infos[order[j]].Offsets
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		return a[1] < b[1]
	})
	var end int64
	prev := ""
	for _, name := range order {
		off := h.infos[name].Offsets
		switch {
		case off[0] < end:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q (ends at %d)", name, off[0], off[1], prev, end)
		case off[0] > end:
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] leave a gap after byte %d", name, off[0], off[1], end)
		}
		end, prev = off[1], name
	}
	if end != h.dataLen {
		return fmt.Errorf("tensors cover %d bytes but the data section has %d", end, h.dataLen)
	}
	return nil
}

// Sentinel errors. Every error returned by this package starts with "safetensors:" and
// wraps one of these where one applies.
var (
	ErrCorrupt          = errors.New("safetensors: corrupt file")
	ErrUnsupportedDType = errors.New("safetensors: unsupported dtype")
	ErrNotFound         = errors.New("safetensors: tensor not found")
	ErrClosed           = errors.New("safetensors: file closed")

	errUnknownDType = errors.New("unknown dtype")
)
