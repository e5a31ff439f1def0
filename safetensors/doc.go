// Package safetensors reads and writes the Hugging Face safetensors format in pure Go.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON header
//
//	{"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//
// and then the data section, where each tensor occupies [begin, end) (offsets relative to
// the first byte after the header) in little-endian, row-major order.
//
// Open memory-maps a file read-only and validates everything the reference
// implementation validates (header size, JSON, dtypes, shapes against byte sizes, offsets
// that tile the data section exactly, duplicate names); Bytes returns zero-copy views into
// the mapping and Float32s, Float64s and Int64s convert (F16 and BF16 exactly, including
// subnormals, infinities and NaN). The mapping is shared with the file: do not truncate or
// rewrite a file while it is open (Write replaces files by rename, which is safe).
// OpenIndex gives one view over a transformers model directory, single-file or sharded.
//
// Write, Encode and WriteSharded produce the reference layout: "__metadata__" first, tensors
// in sorted name order and back to back, header padded with spaces to a multiple of 8. Write
// is atomic (temporary file, fsync, rename, directory fsync). EncodeFloat32s rounds to F16
// and BF16 to nearest, ties to even, as torch does.
//
// The test golden file is written by testdata/make_golden.py from torch tensors; see that
// script for how to regenerate it.
//
// Errors start with "safetensors:" and wrap ErrCorrupt, ErrUnsupportedDType, ErrNotFound or
// ErrClosed where one applies; errors about a file name its path and, where one is at
// fault, the tensor.
package safetensors
