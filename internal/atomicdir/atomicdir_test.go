package atomicdir

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// entries lists a directory's names, sorted.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fillWith writes one file named "f" holding s.
func fillWith(s string) func(string) error {
	return func(tmp string) error { return WriteFile(filepath.Join(tmp, "f"), []byte(s)) }
}

func TestWriteCreatesTheDirectoryWhole(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "a", "b") // created on the way
	dst := filepath.Join(parent, "out")
	var tmpName string
	err := Write(dst, Options{TempPattern: ".tmp-out-", Mode: 0o755}, func(tmp string) error {
		tmpName = filepath.Base(tmp)
		if _, err := os.Stat(dst); !os.IsNotExist(err) {
			t.Errorf("target visible while being written: %v", err)
		}
		return fillWith("new")(tmp)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tmpName, ".tmp-out-") {
		t.Errorf("temporary directory %q does not follow TempPattern", tmpName)
	}
	if got := read(t, filepath.Join(dst, "f")); got != "new" {
		t.Errorf("content %q", got)
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", st.Mode().Perm())
	}
	if got := entries(t, parent); !slices.Equal(got, []string{"out"}) {
		t.Errorf("parent holds %v, want only out", got)
	}
}

func TestWriteFailuresLeaveThePreviousDirectory(t *testing.T) {
	boom := errors.New("boom")
	for name, c := range map[string]struct {
		o    Options
		fill func(string) error
		want error
	}{
		"fill fails":          {Options{Overwrite: true}, func(tmp string) error { fillWith("x")(tmp); return boom }, boom},
		"before rename fails": {Options{Overwrite: true, BeforeRename: func() error { return boom }}, fillWith("x"), boom},
		"exists":              {Options{}, fillWith("x"), ErrExists},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "out")
			if err := Write(dst, Options{}, fillWith("old")); err != nil {
				t.Fatal(err)
			}
			err := Write(dst, c.o, c.fill)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if got := read(t, filepath.Join(dst, "f")); got != "old" {
				t.Errorf("previous content replaced by %q", got)
			}
			if got := entries(t, parent); !slices.Equal(got, []string{"out"}) {
				t.Errorf("parent holds %v, want only out (no temporary left)", got)
			}
		})
	}
}

func TestWriteOverwriteReplacesAndRemovesTheOldCopy(t *testing.T) {
	parent := t.TempDir()
	dst := filepath.Join(parent, "out")
	if err := Write(dst, Options{}, fillWith("old")); err != nil {
		t.Fatal(err)
	}
	sawAside := false
	o := Options{Overwrite: true, Aside: ".tmp-out-old"}
	o.BeforeRename = func() error {
		// The old directory is still the target right before the rename.
		sawAside = read(t, filepath.Join(dst, "f")) == "old"
		return nil
	}
	if err := Write(dst, o, fillWith("new")); err != nil {
		t.Fatal(err)
	}
	if !sawAside {
		t.Error("target was not the old directory before the rename")
	}
	if got := read(t, filepath.Join(dst, "f")); got != "new" {
		t.Errorf("content %q, want new", got)
	}
	if got := entries(t, parent); !slices.Equal(got, []string{"out"}) {
		t.Errorf("parent holds %v, want only out (aside copy removed)", got)
	}
}

func TestFileHelpers(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := WriteFile(a, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(a, []byte("2nd")); err != nil { // truncates
		t.Fatal(err)
	}
	if err := CopyFile(a, b); err != nil {
		t.Fatal(err)
	}
	if got := read(t, b); got != "2nd" {
		t.Errorf("copy holds %q, want 2nd", got)
	}
	if err := Sync(dir); err != nil {
		t.Errorf("Sync(dir): %v", err)
	}
	if err := CopyFile(filepath.Join(dir, "missing"), b); err == nil {
		t.Error("CopyFile of a missing file succeeded")
	}
	if err := WriteFile(filepath.Join(dir, "no", "such"), nil); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}
