package peermem

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNotLocal: the record comes from a process this one cannot read: another
	// host or boot, another PID namespace, a PID that now names another process,
	// or reads of it that the kernel refuses (ptrace rules, a seccomp filter).
	ErrNotLocal = errors.New("peermem: peer not readable from this process")
	// ErrGone: the peer exited or revoked its memory; what a read returned is not used.
	ErrGone = errors.New("peermem: peer gone")
	// ErrRecord: a record that Record did not write.
	ErrRecord = errors.New("peermem: malformed record")
)

const (
	magic      = "LRTPEER1"
	tokenLen   = 16
	headerLen  = 8 + 16 + 8 + 8 + 8 + tokenLen + 8 // magic, boot id, pid ns, pid, page, token, count
	stateOpen  = 1
	stateClose = 2
)

// page is the first bytes of a Local's page, which peers read after every read.
type page struct {
	token [tokenLen]byte
	state atomic.Uint64
}

// Local is this process's side: a page holding a random token and a state word,
// which peers read after each read of its memory.
type Local struct {
	mem   []byte // the mmapped page; nil once revoked
	p     *page
	token [tokenLen]byte
	boot  [16]byte
	pidNS uint64
}

// Publish maps this process's page and marks it open. Call Revoke before the
// memory named in its records is freed.
func Publish() (*Local, error) {
	boot, ns, err := identity()
	if err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(-1, 0, os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("peermem: map the page: %w", err)
	}
	l := &Local{mem: mem, p: (*page)(unsafe.Pointer(&mem[0])), boot: boot, pidNS: ns}
	if _, err := rand.Read(l.token[:]); err != nil {
		_ = unix.Munmap(mem)
		return nil, fmt.Errorf("peermem: token: %w", err)
	}
	l.p.token = l.token
	l.p.state.Store(stateOpen)
	// Under Yama's ptrace_scope 1 only a declared tracer (or its descendants) may read
	// a process: declare the parent, so that sibling processes (the launcher's
	// workers) can. Without Yama the call fails with EINVAL, which changes nothing.
	_ = unix.Prctl(unix.PR_SET_PTRACER, uintptr(os.Getppid()), 0, 0, 0)
	return l, nil
}

// Record describes this process and addrs, the addresses of the memory peers may
// read, for Attach in another process.
func (l *Local) Record(addrs []uint64) []byte {
	b := make([]byte, 0, RecordLen(len(addrs)))
	b = append(b, magic...)
	b = append(b, l.boot[:]...)
	b = binary.LittleEndian.AppendUint64(b, l.pidNS)
	b = binary.LittleEndian.AppendUint64(b, uint64(os.Getpid()))
	b = binary.LittleEndian.AppendUint64(b, uint64(uintptr(unsafe.Pointer(l.p))))
	b = append(b, l.token[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(addrs)))
	for _, a := range addrs {
		b = binary.LittleEndian.AppendUint64(b, a)
	}
	return b
}

// RecordLen is the length of a record of n addresses.
func RecordLen(n int) int { return headerLen + 8*n }

// SetClosing tells peers that this process reads no more of theirs (Peer.Closing).
func (l *Local) SetClosing() {
	if l.mem != nil {
		l.p.state.Store(stateClose)
	}
}

// Revoke unmaps the page: every read that has not yet read it fails with ErrGone,
// so the memory the records name may be freed once Revoke returns. (A peer's read
// reads its data, then the page, each under the kernel's lock of this process's
// address space, which munmap takes exclusively: a read that still found the page
// copied its data before the munmap, hence before anything freed after it.)
func (l *Local) Revoke() {
	if l.mem == nil {
		return
	}
	_ = unix.Munmap(l.mem)
	l.mem, l.p = nil, nil
}

// identity is this boot's id and this process's PID namespace.
func identity() (boot [16]byte, ns uint64, err error) {
	raw, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return boot, 0, fmt.Errorf("peermem: %w", err)
	}
	id, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(string(raw)), "-", ""))
	if err != nil || len(id) != 16 {
		return boot, 0, fmt.Errorf("peermem: boot id %q", raw)
	}
	copy(boot[:], id)
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return boot, 0, fmt.Errorf("peermem: pid namespace: %w", err)
	}
	return boot, st.Ino, nil
}

// Peer is another process's side, as its record describes it.
type Peer struct {
	Pid   int
	Addrs []uint64 // the addresses its record names
	page  uint64
	token [tokenLen]byte
	pidfd int // -1 where pidfd_open is missing
}

// Attach reads a record that Local.Record wrote in another process on this host
// and checks that its page can be read and holds its token. It fails with
// ErrNotLocal where the process cannot be read from here.
func Attach(self *Local, rec []byte) (*Peer, error) {
	if len(rec) < headerLen || string(rec[:8]) != magic {
		return nil, ErrRecord
	}
	n := binary.LittleEndian.Uint64(rec[headerLen-8:])
	if uint64(len(rec)) != uint64(headerLen)+8*n {
		return nil, fmt.Errorf("%w: %d bytes for %d addresses", ErrRecord, len(rec), n)
	}
	if !bytes.Equal(rec[8:24], self.boot[:]) {
		return nil, fmt.Errorf("%w: another host or boot", ErrNotLocal)
	}
	if binary.LittleEndian.Uint64(rec[24:]) != self.pidNS {
		return nil, fmt.Errorf("%w: another PID namespace", ErrNotLocal)
	}
	p := &Peer{Pid: int(binary.LittleEndian.Uint64(rec[32:])), page: binary.LittleEndian.Uint64(rec[40:]), pidfd: -1}
	copy(p.token[:], rec[48:48+tokenLen])
	for i := range n {
		p.Addrs = append(p.Addrs, binary.LittleEndian.Uint64(rec[headerLen+8*i:]))
	}
	if fd, err := unix.PidfdOpen(p.Pid, 0); err == nil {
		p.pidfd = fd
	} else if !errors.Is(err, unix.ENOSYS) {
		return nil, fmt.Errorf("%w: pid %d: %v", ErrNotLocal, p.Pid, err)
	}
	if _, err := p.Closing(); err != nil {
		p.Close()
		if errors.Is(err, ErrGone) {
			err = fmt.Errorf("%w: pid %d: %v", ErrNotLocal, p.Pid, err)
		}
		return nil, err
	}
	return p, nil
}

// ReadAt copies len(dst) bytes from the peer's address addr into dst, then checks
// that the peer is still the process that published its record and has not
// revoked it (ErrGone otherwise: dst may hold anything).
func (p *Peer) ReadAt(dst []byte, addr uint64) error {
	_, err := p.read(dst, addr)
	return err
}

// Closing reports whether the peer has called SetClosing.
func (p *Peer) Closing() (bool, error) {
	state, err := p.read(nil, 0)
	return state == stateClose, err
}

// read is ReadAt, returning the state word the peer's page held after the data.
func (p *Peer) read(dst []byte, addr uint64) (uint64, error) {
	var tail [tokenLen + 8]byte
	local := []unix.Iovec{{Base: &tail[0]}}
	local[0].SetLen(len(tail))
	remote := []unix.RemoteIovec{{Base: uintptr(p.page), Len: len(tail)}}
	if len(dst) > 0 {
		d := unix.Iovec{Base: &dst[0]}
		d.SetLen(len(dst))
		local = append([]unix.Iovec{d}, local...)
		remote = append([]unix.RemoteIovec{{Base: uintptr(addr), Len: len(dst)}}, remote...)
	}
	want := len(dst) + len(tail)
	n, err := unix.ProcessVMReadv(p.Pid, local, remote, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return 0, fmt.Errorf("%w: pid %d exited", ErrGone, p.Pid)
	case errors.Is(err, unix.EPERM):
		return 0, fmt.Errorf("%w: pid %d: %v", ErrNotLocal, p.Pid, err)
	case errors.Is(err, unix.EFAULT):
		return 0, fmt.Errorf("%w: pid %d: address %#x not readable", ErrGone, p.Pid, addr)
	case err != nil:
		return 0, fmt.Errorf("peermem: read pid %d: %w", p.Pid, err)
	case n == len(dst) && len(dst) > 0:
		return 0, fmt.Errorf("%w: pid %d revoked its memory", ErrGone, p.Pid)
	case n != want:
		return 0, fmt.Errorf("%w: pid %d: read %d of %d bytes", ErrGone, p.Pid, n, want)
	case !bytes.Equal(tail[:tokenLen], p.token[:]):
		return 0, fmt.Errorf("%w: pid %d is another process", ErrGone, p.Pid)
	case p.exited():
		return 0, fmt.Errorf("%w: pid %d exited", ErrGone, p.Pid)
	}
	return binary.LittleEndian.Uint64(tail[tokenLen:]), nil
}

// exited reports whether the peer's pidfd says it exited (false without one).
func (p *Peer) exited() bool {
	if p.pidfd < 0 {
		return false
	}
	fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// Close releases the peer's pidfd.
func (p *Peer) Close() {
	if p.pidfd >= 0 {
		_ = unix.Close(p.pidfd)
		p.pidfd = -1
	}
}
