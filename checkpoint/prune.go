package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultStaleAfter is how long a temporary or uncommitted directory must have been left
// untouched before Prune takes it for the leftover of a crashed save.
const DefaultStaleAfter = 30 * time.Minute

type pruneConfig struct {
	staleAfter time.Duration
}

// PruneOption adjusts Prune.
type PruneOption func(*pruneConfig)

// WithStaleAfter sets the age after which temporary and uncommitted directories are removed
// (DefaultStaleAfter by default). The age counts from the newest modification time of the
// directory and the entries in it, so a save still writing a large file stays young.
func WithStaleAfter(d time.Duration) PruneOption {
	return func(c *pruneConfig) { c.staleAfter = d }
}

// Prune deletes old checkpoints under root and returns the paths it removed. It keeps the
// keepLast newest committed checkpoints (steps up to the one latest points to) and always
// the latest itself. Temporary directories (.tmp-*: saves in progress, crashed saves,
// interrupted deletions), step directories newer than latest (a save between its rename and
// its pointer update, or one that crashed there) and a leftover latest.tmp are removed only
// once stale, so a concurrent save is never disturbed. Without a readable latest pointer
// every step directory counts as committed. Directories are renamed to a temporary name
// before they are deleted, so an interrupted Prune never leaves a half-deleted checkpoint.
func Prune(root string, keepLast int, opts ...PruneOption) (removed []string, err error) {
	cfg := pruneConfig{staleAfter: DefaultStaleAfter}
	for _, o := range opts {
		o(&cfg)
	}
	if keepLast < 1 {
		return nil, fmt.Errorf("checkpoint: prune %s: keepLast must be at least 1, got %d", root, keepLast)
	}
	dirs, err := listSteps(root)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: prune: %w", err)
	}
	latest, latestErr := readLatest(root)
	limit, _ := ParseDirName(latest)
	var committed []stepDir
	var doomed, maybeStale []string
	for _, d := range dirs {
		if latestErr == nil && d.step > limit {
			maybeStale = append(maybeStale, d.name)
		} else {
			committed = append(committed, d)
		}
	}
	for i, d := range committed {
		if i < len(committed)-keepLast && d.name != latest {
			doomed = append(doomed, d.name)
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: prune: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) || e.Name() == latestTemp {
			maybeStale = append(maybeStale, e.Name())
		}
	}
	now := time.Now()
	for _, name := range maybeStale {
		if age, err := ageOf(filepath.Join(root, name), now); err == nil && age > cfg.staleAfter {
			doomed = append(doomed, name)
		}
	}
	var errs []error
	for _, name := range doomed {
		var err error
		if _, isStep := ParseDirName(name); isStep {
			err = removeDir(root, name)
		} else {
			err = os.RemoveAll(filepath.Join(root, name))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("checkpoint: prune: remove %s: %w", name, err))
			continue
		}
		removed = append(removed, filepath.Join(root, name))
	}
	return removed, errors.Join(errs...)
}

// ageOf returns how long ago path or any entry directly in it was last modified.
func ageOf(path string, now time.Time) (time.Duration, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return 0, err
	}
	newest := st.ModTime()
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.ModTime().After(newest) {
				newest = info.ModTime()
			}
		}
	}
	return now.Sub(newest), nil
}
