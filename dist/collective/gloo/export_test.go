package gloo

import (
	"errors"
	"fmt"
	"strings"
)

// SetShmDir moves this process's shared-memory files to dir (a test's own
// directory, so that it can check what is left there).
func SetShmDir(dir string) { shmDir = dir }

// FailDataFiles makes rank's next data files fail to allocate, as a full
// tmpfs would (ENOSPC); nil restores the real allocation for every rank.
func FailDataFiles(rank *int) {
	if rank == nil {
		createData = createDataFile
		return
	}
	mark := fmt.Sprintf("-r%d-d", *rank)
	createData = func(path string, size int) (*segment, error) {
		if strings.Contains(path, mark) {
			return nil, errors.New("no space left on device (test)")
		}
		return createDataFile(path, size)
	}
}
