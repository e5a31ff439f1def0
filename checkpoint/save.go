package checkpoint

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lrtrain/lrtrain/internal/atomicdir"
)

// FormatVersion is the manifest format this package writes; Load accepts it and older.
const FormatVersion = 1

const formatName = "lrtrain-checkpoint"

// File is one file of a checkpoint: Write streams its content.
type File struct {
	Name  string
	Write func(w io.Writer) error
}

// FileSum is what the manifest records for each file.
type FileSum struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// reservedFields are the manifest keys this package owns.
var reservedFields = []string{"format", "format_version", "step", "saved_at", "files"}

// Save writes a checkpoint for step under root and makes it the latest. It returns the
// checkpoint's directory, <root>/step-000123.
//
// Everything is written into <root>/.tmp-step-000123-<random>/: each file (fsynced), then
// manifest.json holding the format version, the step, the size and SHA-256 of every file
// and the fields of manifest (which must encode as a JSON object, or be nil, and may not
// use the reserved keys format, format_version, step, saved_at, files). The directory is
// fsynced and renamed to step-000123, root is fsynced, and only then is the latest pointer
// replaced (latest.tmp, fsync, rename, fsync root). On an error before the pointer moves,
// the new directory is removed and the previous checkpoints and the pointer are as they
// were; errors name the file that failed. If only the fsync after the pointer moved fails,
// Save returns the new directory together with the error.
//
// An existing directory for the same step that is not the latest (left by a save that
// crashed before moving the pointer) is replaced; replacing the latest is ErrExists.
// One process saves into a root at a time.
func Save(root string, step int64, files []File, manifest any) (dir string, err error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("checkpoint: save step %d in %s: %w", step, root, err)
	}
	if step < 0 {
		return fail(fmt.Errorf("negative step"))
	}
	fields, err := manifestFields(manifest)
	if err != nil {
		return fail(err)
	}
	if err := checkNames(files); err != nil {
		return fail(err)
	}
	name := DirName(step)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fail(err)
	}
	if err := refuseLatest(root, name); err != nil {
		return fail(err)
	}
	err = atomicdir.Write(filepath.Join(root, name), atomicdir.Options{
		TempPattern:     tempPrefix + name + "-",
		Aside:           tempPrefix + name + "-old-" + randomSuffix(),
		Overwrite:       true, // an uncommitted directory of the same step
		AsideLeftoverOK: true, // Prune deletes .tmp- leftovers
		BeforeRename: func() error {
			if err := hook(stageDirSynced); err != nil {
				return err
			}
			return refuseLatest(root, name)
		},
	}, func(tmp string) error {
		sums, err := writeFiles(tmp, files)
		if err != nil {
			return err
		}
		return writeManifest(tmp, step, sums, fields)
	})
	dir = filepath.Join(root, name)
	if errors.Is(err, atomicdir.ErrCommitted) {
		// Renamed, but root's fsync failed: take the new directory away again.
		if rmErr := removeDir(root, name); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove %s: %w", dir, rmErr))
		}
		return fail(err)
	}
	if err != nil {
		return fail(err)
	}
	if moved, err := commit(root, name); err != nil {
		if moved {
			// Only the last fsync failed: the checkpoint is in place and designated.
			_, err = fail(err)
			return dir, err
		}
		// The pointer did not move: take the new directory away again.
		if rmErr := removeDir(root, name); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("remove %s: %w", dir, rmErr))
		}
		return fail(err)
	}
	return dir, nil
}

// commit moves the pointer to the renamed (and durable) directory. moved reports
// whether the pointer designates the new checkpoint, even when an error is returned.
func commit(root, name string) (moved bool, err error) {
	if err := hook(stageRenamed); err != nil {
		return false, err
	}
	if err := writeLatest(root, name); err != nil {
		if cur, _ := readLatest(root); cur == name {
			return true, fmt.Errorf("%w (%s already points to %s)", err, LatestName, name)
		}
		return false, fmt.Errorf("update %s: %w", LatestName, err)
	}
	return true, nil
}

func checkNames(files []File) error {
	seen := map[string]bool{}
	for _, f := range files {
		switch {
		case f.Name == "" || f.Name == "." || f.Name == ".." || filepath.Base(f.Name) != f.Name:
			return fmt.Errorf("file name %q must be a plain name without directories", f.Name)
		case f.Name == ManifestName:
			return fmt.Errorf("file name %q is reserved", f.Name)
		case seen[f.Name]:
			return fmt.Errorf("duplicate file %q", f.Name)
		case f.Write == nil:
			return fmt.Errorf("file %q has no Write function", f.Name)
		}
		seen[f.Name] = true
	}
	return nil
}

// refuseLatest fails when name is the checkpoint the pointer designates.
func refuseLatest(root, name string) error {
	if cur, err := readLatest(root); err == nil && cur == name {
		return fmt.Errorf("%w: %s is the latest checkpoint and is not replaced", ErrExists, name)
	}
	return nil
}

func writeFiles(dir string, files []File) (map[string]FileSum, error) {
	sums := make(map[string]FileSum, len(files))
	for _, f := range files {
		sum, err := writeOne(filepath.Join(dir, f.Name), f.Write)
		if err != nil {
			return nil, fmt.Errorf("file %q: %w", f.Name, err)
		}
		sums[f.Name] = sum
	}
	if err := hook(stageFilesWritten); err != nil {
		return nil, err
	}
	return sums, nil
}

// writeOne writes, hashes and fsyncs one file.
func writeOne(path string, write func(io.Writer) error) (FileSum, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return FileSum{}, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &countingWriter{w: bufio.NewWriterSize(f, 1<<20), h: h}
	if err := write(cw); err != nil {
		return FileSum{}, err
	}
	if err := cw.w.Flush(); err != nil {
		return FileSum{}, err
	}
	if err := f.Sync(); err != nil {
		return FileSum{}, err
	}
	if err := f.Close(); err != nil {
		return FileSum{}, err
	}
	return FileSum{Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

type countingWriter struct {
	w *bufio.Writer
	h hash.Hash
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// manifestFields encodes the caller's manifest as a JSON object's fields.
func manifestFields(manifest any) (map[string]json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if manifest == nil {
		return fields, nil
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("manifest must encode as a JSON object, got %.40s", raw)
	}
	if fields == nil { // the manifest encoded as null
		fields = map[string]json.RawMessage{}
	}
	for _, k := range reservedFields {
		if _, ok := fields[k]; ok {
			return nil, fmt.Errorf("manifest field %q is reserved", k)
		}
	}
	return fields, nil
}

func writeManifest(dir string, step int64, sums map[string]FileSum, fields map[string]json.RawMessage) error {
	put := func(k string, v any) {
		b, _ := json.Marshal(v) // plain values always encode
		fields[k] = b
	}
	put("format", formatName)
	put("format_version", FormatVersion)
	put("step", step)
	put("saved_at", time.Now().UTC().Format(time.RFC3339Nano))
	put("files", sums)
	b, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", ManifestName, err)
	}
	if err := atomicdir.WriteFile(filepath.Join(dir, ManifestName), append(b, '\n')); err != nil {
		return fmt.Errorf("file %q: %w", ManifestName, err)
	}
	return hook(stageManifestWritten)
}

func randomSuffix() string { return strconv.FormatUint(rand.Uint64(), 36) }
