package gloo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The shared-memory transport's files live in shmDir, a tmpfs every process of
// one container (or one host without containers) sees. Each rank owns one: a
// header page (its sequence counter and failure word), then its window. Every
// file is unlinked as soon as every rank has mapped it, so a rank killed after
// setup leaves nothing behind: the memory goes when the last process that maps
// it exits. A rank killed during setup leaves its file, which the next group
// formed on this host removes (sweepOrphans).
var shmDir = "/dev/shm"

// Offsets in a header page; the two words sit on separate cache lines.
const (
	hdrBytes  = 4096
	offSeq    = 0  // uint32: incremented at every step of the protocol (a futex word)
	offFailed = 64 // uint32: 1 once the rank failed or aborted a collective
)

// hostIdentity names the memory a rank can share: the kernel's boot, the
// tmpfs mounted at shmDir (its device and inode), the hostname and the network
// namespace. Ranks with equal identities see each other's files in shmDir; ""
// when shmDir is unusable. The network namespace keeps ranks that reach each
// other only through a network (containers of separate pods, the "nodes" of
// dist/multinode's harness, which share one tmpfs) on TCP.
func hostIdentity() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	var st unix.Stat_t
	if err := unix.Stat(shmDir, &st); err != nil {
		return ""
	}
	host, _ := os.Hostname()
	netns, _ := os.Readlink("/proc/self/ns/net")
	return fmt.Sprintf("%s|%d:%d|%s|%s", bytes.TrimSpace(boot), st.Dev, st.Ino, host, netns)
}

// segment is one mapped file of the transport: a header or a data file.
type segment struct {
	path string
	f    *os.File
	mem  []byte
}

// createSegment creates path (which must not exist) with size bytes allocated
// up front: on a tmpfs with too little room this fails here, with ENOSPC,
// rather than later as a SIGBUS on first touch. It takes an exclusive flock
// that the kernel drops when the process dies (see alive).
func createSegment(path string, size int) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	s := &segment{path: path, f: f}
	fail := func(what string, err error) (*segment, error) {
		s.unmap()
		os.Remove(path)
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return fail("lock", err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(size)); err != nil {
		return fail("allocate", err)
	}
	if s.mem, err = unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return fail("map", err)
	}
	return s, nil
}

// openSegment maps a peer's file. It is mapped writable only for the futex
// calls' sake; a rank writes nothing but its own file.
func openSegment(path string, size int) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Size < int64(size) {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%d bytes, want %d", st.Size, size)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	return &segment{path: path, f: f, mem: mem}, nil
}

// unmap releases the mapping and the descriptor (and with it the flock).
func (s *segment) unmap() {
	if s == nil {
		return
	}
	if s.mem != nil {
		unix.Munmap(s.mem)
		s.mem = nil
	}
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// alive reports whether the process that created the file s maps is still
// running: it holds an exclusive flock on the file, which the kernel releases
// when the process exits, however it dies. A shared lock taken through this
// rank's own descriptor succeeds only once that lock is gone.
func (s *segment) alive() bool {
	err := unix.Flock(int(s.f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		unix.Flock(int(s.f.Fd()), unix.LOCK_UN)
		return false
	}
	return errors.Is(err, unix.EWOULDBLOCK)
}

// word is the uint32 at off in a mapped page.
func (s *segment) word(off int) *uint32 { return (*uint32)(unsafe.Pointer(&s.mem[off])) }

// segmentPrefix starts the name of every file of the transport in shmDir.
const segmentPrefix = "lrtrain-gloo-"

func segmentPath(nonce string, rank int) string {
	return filepath.Join(shmDir, fmt.Sprintf("%s%s-r%d", segmentPrefix, nonce, rank))
}

// orphanAge is how long a file must have gone unmodified before sweepOrphans
// may remove it. A live rank holds its file's flock from a few microseconds
// after creating it until the name is gone; the age keeps a sweep away from
// files in those microseconds.
const orphanAge = time.Minute

// sweepOrphans removes the files of ranks that died while their file still had
// a name: between creating it and the ranks' agreement that every rank mapped
// every file (setupShm), a window of milliseconds in which a killed rank's file
// would otherwise stay in shmDir, holding its window's memory, until reboot. A
// file is an orphan when it is older than orphanAge and nobody holds its
// flock; this process then takes the flock itself, so two sweeps never both
// see a file free. Files it cannot open (another user's) are left alone.
func sweepOrphans() {
	ents, err := os.ReadDir(shmDir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), segmentPrefix) || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(shmDir, e.Name())
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		fd := int(f.Fd())
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && time.Since(time.Unix(st.Mtim.Unix())) >= orphanAge &&
			unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.Remove(path)
		}
		f.Close()
	}
}

// The futex operations (linux/futex.h), shared between processes.
const (
	futexOpWait = 0
	futexOpWake = 1
)

// futexWait sleeps while *w == v, for at most d (spurious wake-ups are fine:
// callers loop). The futex is not private: the word lives in a shared mapping
// that other processes change.
func futexWait(w *uint32, v uint32, d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexOpWait, uintptr(v),
		uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes every process sleeping on w.
func futexWake(w *uint32) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexOpWake, uintptr(1<<30), 0, 0, 0)
}

// reached reports whether counter value v is at or past target (modulo 2³²).
func reached(v, target uint32) bool { return int32(v-target) >= 0 }

// spinFor is how many loads a wait spends before it sleeps on the futex: a
// peer a few microseconds behind is met without a system call.
const spinFor = 200

// waitTick bounds each futex sleep, so a wait notices an abort, its deadline
// and a dead peer within about this long.
const waitTick = 2 * time.Millisecond

// awaitWord waits until the word at w reaches target. check runs after every
// sleep that did not see progress; a failure it returns ends the wait.
func awaitWord(w *uint32, target uint32, check func() *nativeStatus) *nativeStatus {
	for i := 0; ; i++ {
		v := atomic.LoadUint32(w)
		if reached(v, target) {
			return nil
		}
		if i < spinFor {
			if i%50 == 49 {
				runtime.Gosched()
			}
			continue
		}
		futexWait(w, v, waitTick)
		if reached(atomic.LoadUint32(w), target) {
			return nil
		}
		if st := check(); st != nil {
			return st
		}
	}
}
