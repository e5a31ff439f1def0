package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile, under output.dir, is locked (flock) by rank 0 for as long as a run lives, so
// that a second run into the same directory fails at once instead of mixing its
// checkpoints and metrics with the first one's. The kernel releases the lock when the
// process ends, however it ends; the file itself stays and names the last holder.
const LockFile = "run.lock"

// runLock is a held LockFile, and the next one the run holds (checkpoint.dir's, when
// it lies outside output.dir).
type runLock struct {
	f    *os.File
	next *runLock
}

// lockRunDirs locks output.dir and, when checkpoint.dir lies outside it, checkpoint.dir
// too: two runs with different output directories must not share checkpoints either.
func lockRunDirs(outputDir, checkpointDir string) (*runLock, error) {
	lock, err := lockRunDir(outputDir, "output.dir")
	if err != nil || checkpointDir == "" {
		return lock, err
	}
	rel, err := relPath(outputDir, checkpointDir)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return lock, nil // inside output.dir: its lock covers it
	}
	if lock.next, err = lockRunDir(checkpointDir, "checkpoint.dir"); err != nil {
		lock.release()
		return nil, err
	}
	return lock, nil
}

// relPath is target relative to base, both made absolute first.
func relPath(base, target string) (string, error) {
	b, err := filepath.Abs(base)
	if err != nil {
		return "", err
	}
	t, err := filepath.Abs(target)
	if err != nil {
		return "", err
	}
	return filepath.Rel(b, t)
}

// lockRunDir takes dir's lock without waiting; key names dir's setting in messages.
// When another process holds it, the error wraps ErrLocked and names that process (pid
// and command line).
func lockRunDir(dir, key string) (*runLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("train: %s: %w", key, err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: %s: %w", key, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		holder := lockHolder(f)
		f.Close()
		return nil, fmt.Errorf("%w: %s %s is used by a run that is still alive (%s holds %s); "+
			"stop it first, or give this run another %s", ErrLocked, key, dir, holder, LockFile, key)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("train: lock %s: %w", path, err)
	}
	self := fmt.Sprintf("pid %d\n%s\n", os.Getpid(), commandLine(os.Getpid()))
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(self), 0)
	}
	return &runLock{f: f}, nil
}

// release gives the locks up (closing a file releases its flock).
func (l *runLock) release() {
	for ; l != nil; l = l.next {
		l.f.Close()
	}
}

// lockHolder describes the process recorded in a held lock file: "pid N (command line)",
// the command line read from /proc while the process lives.
func lockHolder(f *os.File) string {
	raw, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<16))
	first, recorded, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimPrefix(first, "pid "))
	if err != nil {
		return "a process that has not written its pid yet"
	}
	cmd := commandLine(pid)
	if cmd == "" {
		cmd = strings.TrimSpace(recorded)
	}
	if cmd == "" {
		return fmt.Sprintf("pid %d", pid)
	}
	return fmt.Sprintf("pid %d (%s)", pid, cmd)
}

// commandLine is /proc/<pid>/cmdline with spaces between the arguments, "" when unreadable.
func commandLine(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(raw, []byte{0}, []byte{' '})))
}

// dropMetricsAfter rewrites metrics.jsonl without the records of the steps after step,
// and without the evaluation of step itself when evalDue: what a run that was killed
// after its last checkpoint had logged, and which the resumed run logs again, so each
// step appears once. A line cut short by the kill goes too. The file is replaced
// atomically (temporary file, fsync, rename) and reopened for appending. It returns how
// many lines were dropped.
func (l *runLog) dropMetricsAfter(step int64, evalDue bool) (int, error) {
	if l.metrics == nil {
		return 0, nil
	}
	if err := l.mbuf.Flush(); err != nil {
		return 0, fmt.Errorf("train: %s: %w", l.metricsPath, err)
	}
	raw, err := os.ReadFile(l.metricsPath)
	if err != nil {
		return 0, fmt.Errorf("train: %w", err)
	}
	var kept bytes.Buffer
	dropped := 0
	for line := range bytes.Lines(raw) {
		var rec struct {
			Step     *int64   `json:"step"`
			EvalLoss *float64 `json:"eval_loss"`
		}
		bad := !bytes.HasSuffix(line, []byte("\n")) || json.Unmarshal(line, &rec) != nil || rec.Step == nil
		if bad || *rec.Step > step || (evalDue && *rec.Step == step && rec.EvalLoss != nil) {
			dropped++
			continue
		}
		kept.Write(line)
	}
	if dropped == 0 {
		return 0, nil
	}
	if err := replaceFile(l.metricsPath, kept.Bytes()); err != nil {
		return 0, fmt.Errorf("train: rewrite %s: %w", l.metricsPath, err)
	}
	mf, err := os.OpenFile(l.metricsPath, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("train: open metrics: %w", err)
	}
	l.metricsFile.Close()
	l.metricsFile, l.mbuf = mf, bufio.NewWriter(mf)
	l.metrics = json.NewEncoder(l.mbuf)
	return dropped, nil
}

// replaceFile writes data to a temporary file beside path, syncs it and renames it over
// path, so that a crash leaves either the old or the new content.
func replaceFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone after the rename; left only on an error
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
