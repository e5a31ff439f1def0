package export

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// writeDir fills a fresh hidden directory next to out and renames it to out, so that
// out is either absent, the old directory (with overwrite) or complete — never
// partial. On error the temporary directory is removed. With overwrite an existing
// out is moved aside first and removed after the rename.
func writeDir(out string, overwrite bool, fill func(tmp string) error) (err error) {
	out = filepath.Clean(out)
	if err := checkOutput(out, overwrite); err != nil {
		return err
	}
	parent := filepath.Dir(out)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := syncPath(tmp); err != nil {
		return err
	}
	var old string
	if _, statErr := os.Lstat(out); statErr == nil {
		if !overwrite { // created while we were writing
			return fmt.Errorf("%w: %s", ErrExists, out)
		}
		old = tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			return fmt.Errorf("export: move aside %s: %w", out, err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if old != "" {
			os.Rename(old, out) // put the previous export back
		}
		return fmt.Errorf("export: %w", err)
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("export: remove previous %s: %w", out, err)
		}
	}
	return syncPath(parent)
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
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("export: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("export: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export: close %s: %w", path, err)
	}
	return nil
}

// copyFileSync copies src to dst and fsyncs dst.
func copyFileSync(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("export: copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("export: sync %s: %w", dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("export: close %s: %w", dst, err)
	}
	return nil
}

// syncPath fsyncs a file or directory.
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("export: sync %s: %w", path, err)
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
