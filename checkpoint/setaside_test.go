package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// After resuming from an older checkpoint because the newest is corrupt, SetAside
// moves the corrupt one out of the way and points latest back, so that the
// resumed run can save that step again.
func TestSetAsideLetsAResumedRunSaveAgain(t *testing.T) {
	root := t.TempDir()
	mustSave(t, root, 1)
	dir2 := mustSave(t, root, 2)
	flipByte(t, filepath.Join(dir2, "a.bin"), 0)

	valid, skipped, err := LatestValid(root)
	if err != nil {
		t.Fatal(err)
	}
	if valid.Step != 1 || len(skipped) != 1 || !errors.Is(skipped[0].Err, ErrChecksum) {
		t.Fatalf("LatestValid = step %d, skipped %v; want step 1 and the corrupt step 2", valid.Step, skipped)
	}
	if _, err := Save(root, 2, stepFiles(2), nil); !errors.Is(err, ErrExists) {
		t.Fatalf("saving over the step latest designates: %v, want ErrExists", err)
	}

	moved, err := SetAside(root, valid.Dir, skipped)
	if err != nil {
		t.Fatal(err)
	}
	if len(moved) != 1 || !strings.HasPrefix(filepath.Base(moved[0]), "invalid-step-000002-") {
		t.Fatalf("moved %v, want the corrupt step-000002 renamed invalid-…", moved)
	}
	if _, err := os.Stat(dir2); !os.IsNotExist(err) {
		t.Fatalf("step-000002 still there: %v", err)
	}
	requireLatest(t, root, 1)
	mustSave(t, root, 2)
	requireLatest(t, root, 2)

	// Nothing newer to set aside: nothing changes.
	if moved, err := SetAside(root, filepath.Join(root, DirName(2)), nil); err != nil || moved != nil {
		t.Fatalf("SetAside with nothing skipped = %v, %v", moved, err)
	}
	if _, err := SetAside(root, filepath.Join(root, "not-a-step"), nil); err == nil {
		t.Fatal("SetAside must refuse a directory that is not a checkpoint")
	}
}

// A step set aside when a directory of its invalid-… name already exists (the same step
// set aside before within the same second) takes a suffixed name: nothing is replaced
// and SetAside does not fail. The names of the next minute are taken beforehand, so
// the case does not depend on when the test runs.
func TestSetAsideTwiceInOneSecond(t *testing.T) {
	root := t.TempDir()
	mustSave(t, root, 1)
	dir2 := mustSave(t, root, 2)
	flipByte(t, filepath.Join(dir2, "a.bin"), 0)
	now := time.Now().Unix()
	for s := now; s < now+60; s++ {
		taken := filepath.Join(root, fmt.Sprintf("invalid-%s-%d", DirName(2), s))
		if err := os.MkdirAll(filepath.Join(taken, "earlier"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	valid, skipped, err := LatestValid(root)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := SetAside(root, valid.Dir, skipped)
	if err != nil {
		t.Fatalf("SetAside onto a taken name: %v", err)
	}
	if len(moved) != 1 || !strings.HasSuffix(moved[0], ".1") {
		t.Fatalf("moved %v, want the corrupt step 2 under a name ending .1", moved)
	}
	if _, err := os.Stat(filepath.Join(moved[0], "a.bin")); err != nil {
		t.Errorf("the set-aside step 2: %v", err)
	}
	if _, err := os.Stat(filepath.Join(strings.TrimSuffix(moved[0], ".1"), "earlier")); err != nil {
		t.Errorf("the earlier set-aside directory was touched: %v", err)
	}
	requireLatest(t, root, 1)
}
