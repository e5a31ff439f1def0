package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/lrtrain/lrtrain/internal/atomicdir"
)

// Names inside a checkpoint root and inside each checkpoint directory.
const (
	LatestName   = "latest"        // pointer file: the name of the newest committed checkpoint
	ManifestName = "manifest.json" // inside each checkpoint directory
	tempPrefix   = ".tmp-"         // unfinished saves and directories being deleted
	latestTemp   = LatestName + ".tmp"
)

// Sentinel errors; every error of this package starts with "checkpoint:".
var (
	ErrNoCheckpoint       = errors.New("checkpoint: no checkpoint")
	ErrCorrupt            = errors.New("checkpoint: corrupt checkpoint")
	ErrChecksum           = errors.New("checkpoint: checksum mismatch")
	ErrUnsupportedVersion = errors.New("checkpoint: unsupported format version")
	ErrExists             = errors.New("checkpoint: checkpoint exists")
	ErrUncommitted        = errors.New("checkpoint: not committed")
)

var stepDirRE = regexp.MustCompile(`^step-(\d{6,})$`)

// DirName returns the directory name of the checkpoint for step: step-000123 (more digits
// once step passes 999999).
func DirName(step int64) string { return fmt.Sprintf("step-%06d", step) }

// ParseDirName returns the step of a checkpoint directory name.
func ParseDirName(name string) (int64, bool) {
	m := stepDirRE.FindStringSubmatch(name)
	if m == nil {
		return 0, false
	}
	step, err := strconv.ParseInt(m[1], 10, 64)
	return step, err == nil
}

type stepDir struct {
	step int64
	name string
}

// listSteps returns the checkpoint directories under root, oldest step first.
func listSteps(root string) ([]stepDir, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list %s: %w", root, err)
	}
	var dirs []stepDir
	for _, e := range entries {
		if step, ok := ParseDirName(e.Name()); ok && e.IsDir() {
			dirs = append(dirs, stepDir{step, e.Name()})
		}
	}
	sort.Slice(dirs, func(i, j int) bool { return dirs[i].step < dirs[j].step })
	return dirs, nil
}

// readLatest returns the directory name the latest pointer holds.
func readLatest(root string) (string, error) {
	p := filepath.Join(root, LatestName)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w in %s (no %s file)", ErrNoCheckpoint, root, LatestName)
	}
	if err != nil {
		return "", fmt.Errorf("checkpoint: read %s: %w", p, err)
	}
	name := strings.TrimSpace(string(b))
	if _, ok := ParseDirName(name); !ok {
		return "", fmt.Errorf("%w: %s holds %q, not a checkpoint directory name", ErrCorrupt, p, name)
	}
	return name, nil
}

// writeLatest points latest at name: latest.tmp is written and fsynced, renamed over
// latest, and root is fsynced.
func writeLatest(root, name string) error {
	tmp := filepath.Join(root, latestTemp)
	if err := atomicdir.WriteFile(tmp, []byte(name+"\n")); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := hook(stageLatestTempWritten); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(root, LatestName)); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := hook(stageLatestRenamed); err != nil {
		return err
	}
	return atomicdir.Sync(root)
}

// removeDir deletes a directory by first renaming it to a temporary name, so that a crash
// half-way through the deletion leaves a temp directory (cleaned by Prune), never a
// half-deleted checkpoint that looks real.
func removeDir(root, name string) error {
	doomed := filepath.Join(root, tempPrefix+name+"-del-"+randomSuffix())
	if err := os.Rename(filepath.Join(root, name), doomed); err != nil {
		return err
	}
	return os.RemoveAll(doomed)
}

// Stages of a Save at which tests inject failures and crashes.
const (
	stageFilesWritten      = "files-written"
	stageManifestWritten   = "manifest-written"
	stageDirSynced         = "dir-synced"
	stageRenamed           = "renamed"
	stageLatestTempWritten = "latest-tmp-written"
	stageLatestRenamed     = "latest-renamed"
)

// hook is a test seam: tests replace it to fail or stop a Save at a stage.
var hook = func(stage string) error { return nil }
