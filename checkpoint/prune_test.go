package checkpoint

import (
	"github.com/lrtrain/lrtrain/internal/testkit"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestPruneKeepsNewestAndLatest(t *testing.T) {
	root := t.TempDir()
	for step := int64(1); step <= 5; step++ {
		mustSave(t, root, step)
	}
	removed, err := Prune(root, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(root, DirName(1)), filepath.Join(root, DirName(2)), filepath.Join(root, DirName(3))}
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"latest", "step-000004", "step-000005"}) {
		t.Errorf("root holds %v", got)
	}
	requireLatest(t, root, 5)
	if removed, _ := Prune(root, 2); len(removed) != 0 {
		t.Errorf("second prune removed %v", removed)
	}
}

// The pointer may designate an older step (after a rollback, or while a newer save is
// between its rename and its pointer update): that step survives, and newer directories are
// left alone until they are stale.
func TestPruneNeverRemovesLatestOrYoungUncommitted(t *testing.T) {
	root := t.TempDir()
	for step := int64(1); step <= 5; step++ {
		mustSave(t, root, step)
	}
	if err := writeLatest(root, DirName(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := Prune(root, 1); err != nil {
		t.Fatal(err)
	}
	if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"latest", "step-000002", "step-000003", "step-000004", "step-000005"}) {
		t.Errorf("root holds %v, want latest (2) and the young uncommitted 3-5", got)
	}
	ageEntries(t, root, time.Hour)
	if _, err := Prune(root, 1); err != nil {
		t.Fatal(err)
	}
	if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"latest", "step-000002"}) {
		t.Errorf("after they went stale the root holds %v", got)
	}
	requireLatest(t, root, 2)
}

func TestPruneTempDirsByAge(t *testing.T) {
	root := t.TempDir()
	mustSave(t, root, 1)
	young := filepath.Join(root, ".tmp-step-000002-young")
	stale := filepath.Join(root, ".tmp-step-000003-stale")
	for _, d := range []string{young, stale} {
		os.Mkdir(d, 0o755)
		os.WriteFile(filepath.Join(d, "big.bin"), []byte("x"), 0o644)
	}
	os.WriteFile(filepath.Join(root, latestTemp), []byte("step-000003\n"), 0o644)
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{stale, filepath.Join(stale, "big.bin"), filepath.Join(root, latestTemp)} {
		os.Chtimes(p, old, old)
	}
	// A temp dir whose own mtime is old but whose file is still being written is young.
	os.Chtimes(young, old, old)
	removed, err := Prune(root, 1, WithStaleAfter(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{stale, filepath.Join(root, latestTemp)}) {
		t.Errorf("removed %v", removed)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("young temp dir removed: %v", err)
	}
	if _, err := Prune(root, 1, WithStaleAfter(time.Nanosecond)); err != nil {
		t.Fatal(err)
	}
	if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"latest", "step-000001"}) {
		t.Errorf("root holds %v", got)
	}
}

func TestPruneWithoutPointerAndBadArguments(t *testing.T) {
	root := t.TempDir()
	for step := int64(1); step <= 3; step++ {
		mustSave(t, root, step)
	}
	os.Remove(filepath.Join(root, LatestName))
	if _, err := Prune(root, 2); err != nil {
		t.Fatal(err)
	}
	if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"step-000002", "step-000003"}) {
		t.Errorf("root holds %v", got)
	}
	if _, err := Prune(root, 0); err == nil {
		t.Error("Prune(keepLast=0) accepted")
	}
	if _, err := Prune(filepath.Join(root, "missing"), 1); err == nil {
		t.Error("Prune of a missing root succeeded")
	}
}
