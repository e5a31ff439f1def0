package gloo

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// SetShmDir moves this process's shared-memory files to dir (a test's own
// directory, so that it can check what is left there).
func SetShmDir(dir string) { shmDir = dir }

// FailFiles makes rank's shared-memory file fail to allocate, as a full tmpfs
// would (ENOSPC); nil restores the real allocation for every rank.
func FailFiles(rank *int) {
	if rank == nil {
		createFile = createSegment
		return
	}
	suffix := fmt.Sprintf("-r%d", *rank)
	createFile = func(path string, size int) (*segment, error) {
		if strings.HasSuffix(path, suffix) {
			return nil, errors.New("allocate " + path + ": no space left on device (test)")
		}
		return createSegment(path, size)
	}
}

// HangAfterCreate makes rank's setup stop for good right after it created its
// shared-memory file, printing "created <path>" first (a rank killed in the
// setup's window); a negative rank restores the real setup.
func HangAfterCreate(rank int) {
	if rank < 0 {
		createFile = createSegment
		return
	}
	suffix := fmt.Sprintf("-r%d", rank)
	createFile = func(path string, size int) (*segment, error) {
		s, err := createSegment(path, size)
		if err == nil && strings.HasSuffix(path, suffix) {
			fmt.Println("created", path)
			time.Sleep(time.Hour)
		}
		return s, err
	}
}

// OrphanAge is how old an unlocked file must be before a setup removes it.
const OrphanAge = orphanAge
