package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Checkpoint is a checkpoint directory whose manifest and files have been verified.
type Checkpoint struct {
	Dir           string
	Step          int64
	FormatVersion int
	SavedAt       time.Time
	Files         map[string]FileSum
	manifest      []byte
}

// Names returns the checkpoint's file names in sorted order (manifest.json excluded).
func (c *Checkpoint) Names() []string { return slices.Sorted(maps.Keys(c.Files)) }

// Path returns the path of the named file.
func (c *Checkpoint) Path(name string) string { return filepath.Join(c.Dir, name) }

// Open opens the named file of the checkpoint for reading.
func (c *Checkpoint) Open(name string) (*os.File, error) {
	if _, ok := c.Files[name]; !ok {
		return nil, fmt.Errorf("checkpoint: %s has no file %q", c.Dir, name)
	}
	return os.Open(c.Path(name))
}

// DecodeManifest unmarshals the whole manifest.json into v, so that v's fields pick up what
// the caller passed to Save.
func (c *Checkpoint) DecodeManifest(v any) error {
	if err := json.Unmarshal(c.manifest, v); err != nil {
		return fmt.Errorf("checkpoint: decode %s: %w", filepath.Join(c.Dir, ManifestName), err)
	}
	return nil
}

type manifestHeader struct {
	Format        string             `json:"format"`
	FormatVersion int                `json:"format_version"`
	Step          *int64             `json:"step"`
	SavedAt       time.Time          `json:"saved_at"`
	Files         map[string]FileSum `json:"files"`
}

// Load verifies the checkpoint in dir and returns it: the manifest must parse and carry a
// supported format version and the step of the directory name, every file it lists must be
// present with the recorded size and SHA-256, and no other file may be present. Errors name
// the offending file and wrap ErrCorrupt (and ErrChecksum for a content mismatch, or
// ErrUnsupportedVersion for a newer format).
func Load(dir string) (*Checkpoint, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, dir, fmt.Sprintf(format, args...))
	}
	raw, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil, fmt.Errorf("checkpoint: load: %w", statErr)
		}
		return nil, fmt.Errorf("%w: %s: %s is missing: %w", ErrCorrupt, dir, ManifestName, err)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint: load: %w", err)
	}
	var mh manifestHeader
	if err := json.Unmarshal(raw, &mh); err != nil {
		return nil, corrupt("%s does not parse: %v", ManifestName, err)
	}
	switch {
	case mh.Format != formatName:
		return nil, corrupt("%s has format %q, want %q", ManifestName, mh.Format, formatName)
	case mh.FormatVersion > FormatVersion:
		return nil, fmt.Errorf("%w: %s: format_version %d, this build reads up to %d", ErrUnsupportedVersion, dir, mh.FormatVersion, FormatVersion)
	case mh.FormatVersion < 1:
		return nil, corrupt("%s has format_version %d", ManifestName, mh.FormatVersion)
	case mh.Step == nil || mh.Files == nil:
		return nil, corrupt("%s lacks step or files", ManifestName)
	}
	if step, ok := ParseDirName(filepath.Base(dir)); ok && step != *mh.Step {
		return nil, corrupt("%s says step %d, the directory name says %d", ManifestName, *mh.Step, step)
	}
	if err := checkEntries(dir, mh.Files); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(mh.Files)) {
		if err := verifyFile(dir, name, mh.Files[name]); err != nil {
			return nil, err
		}
	}
	return &Checkpoint{Dir: dir, Step: *mh.Step, FormatVersion: mh.FormatVersion, SavedAt: mh.SavedAt,
		Files: mh.Files, manifest: raw}, nil
}

// checkEntries compares the directory listing with the manifest: nothing missing, nothing
// extra, only regular files.
func checkEntries(dir string, files map[string]FileSum) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("checkpoint: load: %w", err)
	}
	present := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if name == ManifestName {
			continue
		}
		if _, listed := files[name]; !listed {
			return fmt.Errorf("%w: %s: unexpected file %q not in %s", ErrCorrupt, dir, name, ManifestName)
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%w: %s: %q is not a regular file", ErrCorrupt, dir, name)
		}
		present[name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !present[name] {
			return fmt.Errorf("%w: %s: file %q listed in %s is missing", ErrCorrupt, dir, name, ManifestName)
		}
	}
	return nil
}

func verifyFile(dir, name string, want FileSum) error {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return fmt.Errorf("checkpoint: load %s: %w", dir, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("checkpoint: load %s: read %q: %w", dir, name, err)
	}
	if n != want.Size {
		return fmt.Errorf("%w: %w: %s: file %q has %d bytes, %s says %d", ErrCorrupt, ErrChecksum, dir, name, n, ManifestName, want.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 {
		return fmt.Errorf("%w: %w: %s: file %q has SHA-256 %s, %s says %s", ErrCorrupt, ErrChecksum, dir, name, got, ManifestName, want.SHA256)
	}
	return nil
}

// Latest returns the directory the latest pointer of root designates (without verifying
// it; Load does). ErrNoCheckpoint means nothing was ever committed under root.
func Latest(root string) (string, error) {
	name, err := readLatest(root)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, name)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("%w: %s points to %s: %w", ErrCorrupt, filepath.Join(root, LatestName), name, err)
	}
	return dir, nil
}

// Skipped is a checkpoint directory LatestValid passed over, and why.
type Skipped struct {
	Dir string
	Err error
}

// LatestValid returns the newest checkpoint under root that verifies, starting from the one
// the latest pointer designates and walking back through older steps. Directories with
// steps above the pointer's are uncommitted (a save crashed before moving the pointer) and
// are skipped with ErrUncommitted; if the pointer itself is missing or unreadable, every
// step directory is a candidate, newest first. Every directory passed over is reported
// with the reason. ErrNoCheckpoint when none verifies.
func LatestValid(root string) (*Checkpoint, []Skipped, error) {
	dirs, err := listSteps(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: %s does not exist", ErrNoCheckpoint, root)
	}
	if err != nil {
		return nil, nil, err
	}
	var skipped []Skipped
	limit := int64(-1)
	if name, err := readLatest(root); err != nil {
		skipped = append(skipped, Skipped{filepath.Join(root, LatestName), err})
	} else {
		limit, _ = ParseDirName(name)
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			skipped = append(skipped, Skipped{filepath.Join(root, name), fmt.Errorf("%w: %s points to it: %w", ErrCorrupt, LatestName, err)})
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		dir := filepath.Join(root, dirs[i].name)
		if limit >= 0 && dirs[i].step > limit {
			skipped = append(skipped, Skipped{dir, fmt.Errorf("%w: step %d is newer than %s (step %d)", ErrUncommitted, dirs[i].step, LatestName, limit)})
			continue
		}
		c, err := Load(dir)
		if err == nil {
			return c, skipped, nil
		}
		skipped = append(skipped, Skipped{dir, err})
	}
	return nil, skipped, fmt.Errorf("%w under %s that verifies (%d skipped)", ErrNoCheckpoint, root, len(skipped))
}
