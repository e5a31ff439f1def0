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
	onRankFile(*rank, func(path string, _ int) (*segment, error) {
		return nil, errors.New("allocate " + path + ": no space left on device (test)")
	})
}

// HangAfterCreate makes rank's setup stop for good right after it created its
// shared-memory file, printing "created <path>" first (a rank killed in the
// setup's window; used by child processes, which never restore it).
func HangAfterCreate(rank int) {
	onRankFile(rank, func(path string, size int) (*segment, error) {
		s, err := createSegment(path, size)
		if err == nil {
			fmt.Println("created", path)
			time.Sleep(time.Hour)
		}
		return s, err
	})
}

// onRankFile makes createFile call create for rank's file and the real
// createSegment for every other.
func onRankFile(rank int, create func(path string, size int) (*segment, error)) {
	suffix := fmt.Sprintf("-r%d", rank)
	createFile = func(path string, size int) (*segment, error) {
		if strings.HasSuffix(path, suffix) {
			return create(path, size)
		}
		return createSegment(path, size)
	}
}

// OrphanAge is how old an unlocked file must be before a setup removes it.
const OrphanAge = orphanAge
