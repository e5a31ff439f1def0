package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/lrtrain/lrtrain/internal/testkit"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// bytesFiles turns name -> content into Files.
func bytesFiles(contents map[string]string) []File {
	var files []File
	for _, name := range slices.Sorted(maps.Keys(contents)) {
		data := contents[name]
		files = append(files, File{Name: name, Write: func(w io.Writer) error {
			_, err := io.WriteString(w, data)
			return err
		}})
	}
	return files
}

// mustSave saves step with files a.bin and b.bin whose contents depend on the step.
func mustSave(t *testing.T, root string, step int64) string {
	t.Helper()
	dir, err := Save(root, step, stepFiles(step), map[string]int64{"data_cursor": step * 10})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func stepFiles(step int64) []File {
	return bytesFiles(map[string]string{
		"a.bin": fmt.Sprintf("adapters of step %d", step),
		"b.bin": strings.Repeat(fmt.Sprint(step), 5000),
	})
}

// requireLatest checks that latest designates step and that it loads.
func requireLatest(t *testing.T, root string, step int64) *Checkpoint {
	t.Helper()
	dir, err := Latest(root)
	if err != nil {
		t.Fatalf("Latest: %v", err)
	}
	if filepath.Base(dir) != DirName(step) {
		t.Fatalf("latest points to %s, want %s", filepath.Base(dir), DirName(step))
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(latest): %v", err)
	}
	return c
}

func TestSaveLoadRoundTrip(t *testing.T) {
	root := filepath.Join(t.TempDir(), "ckpt") // Save creates it
	type meta struct {
		WorldSize  int    `json:"world_size"`
		DataCursor int64  `json:"data_cursor"`
		Model      string `json:"model"`
	}
	contents := map[string]string{"adapters.safetensors": "adapter bytes", "optimizer.bin": strings.Repeat("m", 3<<20), "empty": ""}
	dir, err := Save(root, 123, bytesFiles(contents), meta{WorldSize: 4, DataCursor: 987, Model: "tiny"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "step-000123"); dir != want {
		t.Errorf("Save returned %s, want %s", dir, want)
	}
	c := requireLatest(t, root, 123)
	if c.Step != 123 || c.FormatVersion != FormatVersion || c.SavedAt.IsZero() {
		t.Errorf("checkpoint = step %d version %d saved %v", c.Step, c.FormatVersion, c.SavedAt)
	}
	if got := c.Names(); !slices.Equal(got, []string{"adapters.safetensors", "empty", "optimizer.bin"}) {
		t.Errorf("Names() = %v", got)
	}
	for name, data := range contents {
		sum := sha256.Sum256([]byte(data))
		if fs := c.Files[name]; fs.Size != int64(len(data)) || fs.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("manifest entry for %s = %+v, want size %d sha %x", name, fs, len(data), sum)
		}
		f, err := c.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(f)
		f.Close()
		if string(got) != data {
			t.Errorf("%s read back %d bytes, want %d", name, len(got), len(data))
		}
	}
	var m meta
	if err := c.DecodeManifest(&m); err != nil || m != (meta{4, 987, "tiny"}) {
		t.Errorf("DecodeManifest = %+v, %v", m, err)
	}
	if _, err := c.Open("nope"); err == nil {
		t.Error("Open of an unlisted file succeeded")
	}
	if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"latest", "step-000123"}) {
		t.Errorf("root holds %v, want only latest and step-000123", got)
	}
	if b, _ := os.ReadFile(filepath.Join(root, LatestName)); string(b) != "step-000123\n" {
		t.Errorf("latest holds %q", b)
	}
}

func TestDirNames(t *testing.T) {
	for step, name := range map[int64]string{0: "step-000000", 42: "step-000042", 1234567: "step-1234567"} {
		if got := DirName(step); got != name {
			t.Errorf("DirName(%d) = %s, want %s", step, got, name)
		}
		if got, ok := ParseDirName(name); !ok || got != step {
			t.Errorf("ParseDirName(%s) = %d, %v", name, got, ok)
		}
	}
	for _, bad := range []string{"step-12", "step-00001x", ".tmp-step-000001-abc", "latest", "step--00001"} {
		if _, ok := ParseDirName(bad); ok {
			t.Errorf("ParseDirName(%q) accepted", bad)
		}
	}
}

func TestSaveRejectsBadInput(t *testing.T) {
	root := t.TempDir()
	ok := stepFiles(1)
	cases := map[string]struct {
		files    []File
		manifest any
		phrase   string
	}{
		"reserved field":  {ok, map[string]any{"step": 3}, `"step" is reserved`},
		"not an object":   {ok, []int{1, 2}, "JSON object"},
		"unencodable":     {ok, map[string]any{"f": func() {}}, "encode manifest"},
		"path in name":    {bytesFiles(map[string]string{"sub/x": "1"}), nil, "plain name"},
		"dot-dot name":    {bytesFiles(map[string]string{"..": "1"}), nil, "plain name"},
		"manifest name":   {bytesFiles(map[string]string{ManifestName: "1"}), nil, "reserved"},
		"duplicate names": {append(stepFiles(1), stepFiles(1)...), nil, "duplicate"},
		"nil writer":      {[]File{{Name: "x"}}, nil, "no Write"},
	}
	for name, c := range cases {
		if _, err := Save(root, 1, c.files, c.manifest); err == nil || !strings.Contains(err.Error(), c.phrase) {
			t.Errorf("%s: Save error = %v, want %q", name, err, c.phrase)
		}
	}
	if _, err := Save(root, -1, ok, nil); err == nil {
		t.Error("negative step accepted")
	}
	if got := testkit.DirNames(t, root); len(got) != 0 {
		t.Errorf("rejected saves left %v", got)
	}
}

// A disk that fills up while a file is written: the error says which file and why, and
// nothing of the new checkpoint remains.
func TestSaveENOSPCNamesTheFile(t *testing.T) {
	root := t.TempDir()
	mustSave(t, root, 1)
	files := append(stepFiles(2), File{Name: "optimizer.bin", Write: func(w io.Writer) error {
		w.Write(make([]byte, 4096))
		return &os.PathError{Op: "write", Path: "optimizer.bin", Err: syscall.ENOSPC}
	}})
	_, err := Save(root, 2, files, nil)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), `file "optimizer.bin"`) ||
		!strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("error = %v, want ENOSPC naming optimizer.bin", err)
	}
	requireLatest(t, root, 1)
	if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"latest", "step-000001"}) {
		t.Errorf("root holds %v after a failed save", got)
	}
}

// Failing at every stage of Save leaves the previous checkpoint designated and loadable and
// nothing else behind, except when only the final fsync after the pointer moved fails.
func TestSaveFailureAtEachStage(t *testing.T) {
	stages := []string{stageFilesWritten, stageManifestWritten, stageDirSynced, stageRenamed, stageLatestTempWritten, stageLatestRenamed}
	for _, stage := range stages {
		t.Run(stage, func(t *testing.T) {
			root := t.TempDir()
			mustSave(t, root, 1)
			injected := fmt.Errorf("injected failure at %s", stage)
			setHook(t, func(s string) error {
				if s == stage {
					return injected
				}
				return nil
			})
			dir, err := Save(root, 2, stepFiles(2), nil)
			if !errors.Is(err, injected) {
				t.Fatalf("Save error = %v, want the injected one", err)
			}
			setHook(t, nil)
			if stage == stageLatestRenamed {
				if dir == "" {
					t.Error("Save did not return the directory the pointer already designates")
				}
				requireLatest(t, root, 2)
				return
			}
			requireLatest(t, root, 1)
			if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"latest", "step-000001"}) {
				t.Errorf("root holds %v after a failed save", got)
			}
			mustSave(t, root, 2) // and the next attempt works
			requireLatest(t, root, 2)
		})
	}
}

func TestSaveFailingWriterKeepsPrevious(t *testing.T) {
	root := t.TempDir()
	mustSave(t, root, 1)
	boom := errors.New("tensor export failed")
	_, err := Save(root, 2, []File{stepFiles(2)[0], {Name: "c.bin", Write: func(io.Writer) error { return boom }}}, nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), `"c.bin"`) {
		t.Fatalf("error = %v", err)
	}
	requireLatest(t, root, 1)
}

// A directory left by a save that crashed before moving the pointer is replaced by the
// next save of that step; the designated checkpoint is never replaced.
func TestSaveReplacesUncommittedButNotLatest(t *testing.T) {
	root := t.TempDir()
	mustSave(t, root, 1)
	stale := filepath.Join(root, DirName(2))
	os.Mkdir(stale, 0o755)
	os.WriteFile(filepath.Join(stale, "junk"), []byte("half"), 0o644)
	mustSave(t, root, 2)
	c := requireLatest(t, root, 2)
	if _, ok := c.Files["junk"]; ok {
		t.Error("old contents survived")
	}
	if _, err := Save(root, 2, stepFiles(2), nil); !errors.Is(err, ErrExists) {
		t.Errorf("re-saving the latest step: %v, want ErrExists", err)
	}
	requireLatest(t, root, 2)
	if got := testkit.DirNames(t, root); !slices.Equal(got, []string{"latest", "step-000001", "step-000002"}) {
		t.Errorf("root holds %v", got)
	}
}

func setHook(t *testing.T, h func(string) error) {
	if h == nil {
		h = func(string) error { return nil }
	}
	old := hook
	hook = h
	t.Cleanup(func() { hook = old })
}
