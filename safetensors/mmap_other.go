//go:build !unix

package safetensors

import (
	"io"
	"os"
)

// Without mmap the file is read into memory.
func mapFile(f *os.File, size int) ([]byte, error) {
	b := make([]byte, size)
	_, err := io.ReadFull(f, b)
	return b, err
}

func unmapFile([]byte) error { return nil }

func releasePages([]byte) error { return nil }
