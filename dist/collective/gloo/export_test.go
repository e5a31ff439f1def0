package gloo

import (
	"errors"
	"fmt"
	"strings"
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
