package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// SetAside makes the checkpoint in dir the newest again after LatestValid passed
// over newer ones that failed verification (its skipped list): each newer step
// directory among skipped is renamed to invalid-<name>-<unix time> (kept for
// inspection; nothing in this package reads it; a step set aside twice within one
// second takes the first free suffix .1, .2, …), and the latest pointer is moved
// to dir, so that a run resumed from dir can save those steps again (Save never
// replaces the checkpoint latest designates, valid or not). Uncommitted
// directories are left for Save and Prune. It returns the new paths of the
// directories it moved; with none to move it changes nothing.
func SetAside(root, dir string, skipped []Skipped) ([]string, error) {
	keep, ok := ParseDirName(filepath.Base(dir))
	if !ok {
		return nil, fmt.Errorf("checkpoint: set aside: %s is not a checkpoint directory", dir)
	}
	var moved []string
	for _, sk := range skipped {
		step, ok := ParseDirName(filepath.Base(sk.Dir))
		if !ok || step <= keep || errors.Is(sk.Err, ErrUncommitted) {
			continue // the pointer file itself, older steps, or leftovers Save replaces
		}
		dst, err := freeName(filepath.Join(root, fmt.Sprintf("invalid-%s-%d", filepath.Base(sk.Dir), time.Now().Unix())))
		if err != nil {
			return moved, fmt.Errorf("checkpoint: set aside invalid checkpoint %s: %w", sk.Dir, err)
		}
		if err := os.Rename(sk.Dir, dst); err != nil {
			return moved, fmt.Errorf("checkpoint: set aside invalid checkpoint %s: %w", sk.Dir, err)
		}
		moved = append(moved, dst)
	}
	if len(moved) == 0 {
		return nil, nil
	}
	if err := writeLatest(root, filepath.Base(dir)); err != nil {
		return moved, fmt.Errorf("checkpoint: point %s at %s: %w", LatestName, filepath.Base(dir), err)
	}
	return moved, nil
}

// freeName is base, or base.1, base.2, … when a file of that name exists: a rename
// onto an existing name would fail (a directory with files) or replace it (an empty one).
func freeName(base string) (string, error) {
	path := base
	for n := 1; n <= 1000; n++ {
		if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
			return path, nil
		} else if err != nil {
			return "", err
		}
		path = fmt.Sprintf("%s.%d", base, n)
	}
	return "", fmt.Errorf("%s and its suffixes .1 to .999 all exist", base)
}
