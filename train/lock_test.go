package train

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Two runs with different output directories but one checkpoint directory outside both
// would overwrite each other's checkpoints: the second is refused, naming
// checkpoint.dir. A checkpoint directory inside output.dir takes no second lock (the
// output directory's covers it), and releasing frees both.
func TestCheckpointDirOutsideOutputIsLockedToo(t *testing.T) {
	root := t.TempDir()
	shared := filepath.Join(root, "ckpt")
	first, err := lockRunDirs(filepath.Join(root, "a"), shared)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockRunDirs(filepath.Join(root, "b"), shared)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "checkpoint.dir "+shared) ||
		!strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second run sharing checkpoint.dir: %v\nwant ErrLocked naming checkpoint.dir %s and this process", err, shared)
	}
	// The refused run released output.dir b: another run may take it.
	b, err := lockRunDirs(filepath.Join(root, "b"), filepath.Join(root, "b", "checkpoints"))
	if err != nil {
		t.Fatalf("output.dir b after the refusal: %v", err)
	}
	if b.next != nil {
		t.Errorf("checkpoint.dir inside output.dir took its own lock")
	}
	b.release()
	first.release()
	again, err := lockRunDirs(filepath.Join(root, "c"), shared)
	if err != nil {
		t.Fatalf("checkpoint.dir after the first run released it: %v", err)
	}
	again.release()
}
