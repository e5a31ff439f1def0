//go:build unix

package safetensors

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

func mapFile(f *os.File, size int) ([]byte, error) {
	return syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
}

func unmapFile(b []byte) error { return syscall.Munmap(b) }

// releasePages drops b's pages from this process's mapping (madvise MADV_DONTNEED): the
// mapping is shared and read-only, so nothing is lost, and the next read faults the
// file's bytes back in from the page cache.
func releasePages(b []byte) error { return unix.Madvise(b, unix.MADV_DONTNEED) }
