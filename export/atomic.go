package export

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lrtrain/lrtrain/internal/atomicdir"
)

// writeDir fills a fresh hidden directory next to out and renames it to out
// (atomicdir.Write), so that out is either absent, the old directory (with
// overwrite) or complete — never partial. On error the temporary directory is
// removed. With overwrite an existing out is moved aside first and removed after
// the rename.
func writeDir(out string, overwrite bool, fill func(tmp string) error) error {
	out = filepath.Clean(out)
	if err := checkOutput(out, overwrite); err != nil {
		return err
	}
	var fillErr error
	err := atomicdir.Write(out, atomicdir.Options{Overwrite: overwrite, Mode: 0o755}, func(tmp string) error {
		fillErr = fill(tmp)
		return fillErr
	})
	switch {
	case err == nil:
		return nil
	case fillErr != nil: // fill's errors carry their own context
		return fillErr
	case errors.Is(err, atomicdir.ErrExists): // created while we were writing
		return fmt.Errorf("%w: %s", ErrExists, out)
	}
	return fmt.Errorf("export: %w", err)
}

// checkOutput refuses an existing output unless overwrite is set (and then only a
// directory).
func checkOutput(out string, overwrite bool) error {
	st, err := os.Lstat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("export: %w", err)
	case !overwrite:
		return fmt.Errorf("%w: %s (remove it or pass --overwrite)", ErrExists, out)
	case !st.IsDir():
		return fmt.Errorf("%w: %s is not a directory", ErrExists, out)
	}
	return nil
}

// writeFileSync writes data to path and fsyncs it.
func writeFileSync(path string, data []byte) error {
	if err := atomicdir.WriteFile(path, data); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// copyFileSync copies src to dst and fsyncs dst.
func copyFileSync(src, dst string) error {
	if err := atomicdir.CopyFile(src, dst); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// listFiles returns the names of the regular files in dir, sorted.
func listFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
