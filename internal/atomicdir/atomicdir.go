// Package atomicdir writes a directory so that it appears whole or not at all,
// and holds the fsync helpers that go with it.
//
// Write fills a fresh temporary directory beside the target, fsyncs it (the
// files in it are fsynced by whoever wrote them: WriteFile and CopyFile do), and
// renames it onto the target, moving an existing target aside first when
// Options.Overwrite allows; then it fsyncs the parent so the rename is durable.
// The target is therefore always absent, the previous directory, or complete —
// never partial — even if the process dies at any point. On an error before the
// rename the temporary directory is removed and the previous target is where it
// was. The temporary and moved-aside names start with a dot or a caller-chosen
// prefix so that a crash's leftovers are recognisable (checkpoint.Prune deletes
// the ones under a checkpoint root).
//
// checkpoint (each step directory) and export (the merged or adapter-only model)
// both write through it.
package atomicdir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

var (
	// ErrExists: the target appeared while the directory was being written and
	// Options.Overwrite is off.
	ErrExists = errors.New("atomicdir: target exists")
	// ErrCommitted wraps errors that happen after the rename (removing the
	// moved-aside directory, fsyncing the parent): the new directory is in
	// place but may not survive a crash, and the caller decides whether to keep
	// it.
	ErrCommitted = errors.New("atomicdir: in place but not durable")
)

// Options tune Write; the zero value writes into ".<base>.tmp-*" and refuses an
// existing target.
type Options struct {
	// TempPattern is os.MkdirTemp's pattern for the temporary directory in the
	// target's parent (default "." + base + ".tmp-").
	TempPattern string
	// Aside is the name, in the parent, an existing target is moved to before
	// the rename and deleted from after it (default: the temporary name +
	// ".old").
	Aside string
	// Overwrite replaces an existing target; without it an existing target at
	// rename time is ErrExists.
	Overwrite bool
	// Mode, if not 0, is set on the temporary directory (os.MkdirTemp makes it
	// 0700).
	Mode fs.FileMode
	// BeforeRename, if set, runs after the temporary directory is synced and
	// right before the rename; its error aborts the write.
	BeforeRename func() error
	// AsideLeftoverOK makes a failure to delete the moved-aside directory no
	// error: the caller cleans such leftovers later.
	AsideLeftoverOK bool
}

// Write creates dst atomically: fill writes the directory's content into tmp
// (fsyncing what it writes), and Write does the rest (see the package doc).
func Write(dst string, o Options, fill func(tmp string) error) (err error) {
	dst = filepath.Clean(dst)
	parent, base := filepath.Dir(dst), filepath.Base(dst)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	pattern := o.TempPattern
	if pattern == "" {
		pattern = "." + base + ".tmp-"
	}
	tmp, err := os.MkdirTemp(parent, pattern)
	if err != nil {
		return fmt.Errorf("temporary directory for %s: %w", dst, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			os.RemoveAll(tmp)
		}
	}()
	if o.Mode != 0 {
		if err := os.Chmod(tmp, o.Mode); err != nil {
			return fmt.Errorf("chmod %s: %w", tmp, err)
		}
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := Sync(tmp); err != nil {
		return err
	}
	if o.BeforeRename != nil {
		if err := o.BeforeRename(); err != nil {
			return err
		}
	}
	aside, err := moveAside(dst, tmp, o)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		if aside != "" {
			os.Rename(aside, dst) // put the previous directory back
		}
		return fmt.Errorf("rename to %s: %w", dst, err)
	}
	renamed = true
	if aside != "" {
		if err := os.RemoveAll(aside); err != nil && !o.AsideLeftoverOK {
			return fmt.Errorf("%w: remove previous %s: %w", ErrCommitted, dst, err)
		}
	}
	if err := Sync(parent); err != nil {
		return fmt.Errorf("%w: %w", ErrCommitted, err)
	}
	return nil
}

// moveAside renames an existing dst out of the way (Options.Aside) and returns
// where it went, or "" when there was nothing to move.
func moveAside(dst, tmp string, o Options) (string, error) {
	if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("stat %s: %w", dst, err)
	}
	if !o.Overwrite {
		return "", fmt.Errorf("%w: %s", ErrExists, dst)
	}
	aside := tmp + ".old"
	if o.Aside != "" {
		aside = filepath.Join(filepath.Dir(dst), o.Aside)
	}
	if err := os.Rename(dst, aside); err != nil {
		return "", fmt.Errorf("move aside %s: %w", dst, err)
	}
	return aside, nil
}

// WriteFile writes data to path (created or truncated, mode 0644) and fsyncs it.
func WriteFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return closeSynced(f)
}

// CopyFile copies src to dst (created or truncated, mode 0644) and fsyncs dst.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return closeSynced(out)
}

// closeSynced fsyncs and closes f.
func closeSynced(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	return nil
}

// Sync fsyncs a file or directory (for a directory: the names in it).
func Sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}
