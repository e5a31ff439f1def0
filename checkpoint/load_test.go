package checkpoint

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadDetectsDamage(t *testing.T) {
	cases := []struct {
		name   string
		damage func(dir string)
		want   error
		phrase string
	}{
		{"flipped byte", func(dir string) { flipByte(t, filepath.Join(dir, "b.bin"), 2500) }, ErrChecksum, `file "b.bin" has SHA-256`},
		{"truncated file", func(dir string) { os.Truncate(filepath.Join(dir, "a.bin"), 3) }, ErrChecksum, `file "a.bin" has 3 bytes`},
		{"missing file", func(dir string) { os.Remove(filepath.Join(dir, "a.bin")) }, ErrCorrupt, `file "a.bin" listed in manifest.json is missing`},
		{"extra file", func(dir string) { os.WriteFile(filepath.Join(dir, "stray.txt"), nil, 0o644) }, ErrCorrupt, `unexpected file "stray.txt"`},
		{"extra directory", func(dir string) { os.Mkdir(filepath.Join(dir, "sub"), 0o755) }, ErrCorrupt, `unexpected file "sub"`},
		{"missing manifest", func(dir string) { os.Remove(filepath.Join(dir, ManifestName)) }, ErrCorrupt, "manifest.json is missing"},
		{"garbled manifest", func(dir string) { os.WriteFile(filepath.Join(dir, ManifestName), []byte("{"), 0o644) }, ErrCorrupt, "does not parse"},
		{"foreign manifest", func(dir string) { editManifest(t, dir, "format", "other") }, ErrCorrupt, `format "other"`},
		{"newer version", func(dir string) { editManifest(t, dir, "format_version", 99) }, ErrUnsupportedVersion, "format_version 99"},
		{"wrong step", func(dir string) { editManifest(t, dir, "step", 8) }, ErrCorrupt, "says step 8"},
		{"tampered sum", func(dir string) {
			editManifest(t, dir, "files", map[string]FileSum{"a.bin": {Size: 17, SHA256: strings.Repeat("0", 64)}, "b.bin": {Size: 5000}})
		}, ErrChecksum, `file "a.bin"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			dir := mustSave(t, root, 7)
			c.damage(dir)
			_, err := Load(dir)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.phrase) ||
				!strings.Contains(err.Error(), dir) || !strings.HasPrefix(err.Error(), "checkpoint:") {
				t.Errorf("Load error = %v\nwant %v naming %s and saying %q", err, c.want, dir, c.phrase)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing dir) = %v", err)
	}
}

func TestLatestErrors(t *testing.T) {
	root := t.TempDir()
	if _, err := Latest(root); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("Latest(empty) = %v, want ErrNoCheckpoint", err)
	}
	os.WriteFile(filepath.Join(root, LatestName), []byte("../../etc\n"), 0o644)
	if _, err := Latest(root); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Latest(garbage pointer) = %v, want ErrCorrupt", err)
	}
	os.WriteFile(filepath.Join(root, LatestName), []byte("step-000009\n"), 0o644)
	if _, err := Latest(root); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "step-000009") {
		t.Errorf("Latest(dangling pointer) = %v", err)
	}
}

func TestLatestValidWalksBack(t *testing.T) {
	root := t.TempDir()
	for step := int64(1); step <= 3; step++ {
		mustSave(t, root, step)
	}
	c, skipped, err := LatestValid(root)
	if err != nil || c.Step != 3 || len(skipped) != 0 {
		t.Fatalf("intact: step %v, skipped %v, err %v", c, skipped, err)
	}
	flipByte(t, filepath.Join(root, DirName(3), "a.bin"), 0)
	os.Remove(filepath.Join(root, DirName(2), "b.bin"))
	// An uncommitted newer directory is never taken, even a complete one.
	if err := os.Rename(mustSave(t, t.TempDir(), 4), filepath.Join(root, DirName(4))); err != nil {
		t.Fatal(err)
	}
	c, skipped, err = LatestValid(root)
	if err != nil || c.Step != 1 {
		t.Fatalf("LatestValid = %v, %v", c, err)
	}
	wants := []struct {
		dir string
		err error
	}{{DirName(4), ErrUncommitted}, {DirName(3), ErrChecksum}, {DirName(2), ErrCorrupt}}
	if len(skipped) != len(wants) {
		t.Fatalf("skipped = %v, want %d entries", skipped, len(wants))
	}
	for i, w := range wants {
		if filepath.Base(skipped[i].Dir) != w.dir || !errors.Is(skipped[i].Err, w.err) {
			t.Errorf("skipped[%d] = %s: %v; want %s: %v", i, skipped[i].Dir, skipped[i].Err, w.dir, w.err)
		}
	}
	// Without a pointer every directory is a candidate, newest first.
	os.Remove(filepath.Join(root, LatestName))
	c, skipped, err = LatestValid(root)
	if err != nil || c.Step != 4 || !errors.Is(skipped[0].Err, ErrNoCheckpoint) {
		t.Errorf("without latest: %v, %v, %v", c, skipped, err)
	}
	os.RemoveAll(filepath.Join(root, DirName(4)))
	os.RemoveAll(filepath.Join(root, DirName(1)))
	if _, skipped, err = LatestValid(root); !errors.Is(err, ErrNoCheckpoint) || len(skipped) != 3 {
		t.Errorf("nothing valid: skipped %v, err %v", skipped, err)
	}
	if _, _, err := LatestValid(filepath.Join(root, "missing")); !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("missing root: %v, want ErrNoCheckpoint", err)
	}
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func editManifest(t *testing.T, dir, key string, value any) {
	t.Helper()
	p := filepath.Join(dir, ManifestName)
	var m map[string]any
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(raw, &m)
	m[key] = value
	raw, _ = json.Marshal(m)
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
