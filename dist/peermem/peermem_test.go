package peermem_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/lrtrain/lrtrain/dist/peermem"
	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
)

// These tests read real child processes, so they need what the package needs: a
// kernel that lets a process read its child with process_vm_readv (Debian's defaults:
// Yama's ptrace_scope 0 or 1, process_vm_readv not filtered by seccomp).
func TestMain(m *testing.M) {
	childproc.Main(map[string]func() int{"owner": ownerChild})
	os.Exit(m.Run())
}

const dataLen = 3<<20 + 5 // not a whole number of pages

// pattern is byte i of the owner's data.
func pattern(i int) byte { return byte(i*7%251 + 1) }

// ownerChild publishes a buffer of dataLen bytes (mapped on its own, so that "unmap"
// can take it away), prints its record in hex and then obeys one command per line
// of standard input, answering "ok" to each: closing (SetClosing), revoke (Revoke),
// unmap (unmap the data but keep the page), exit.
func ownerChild() int {
	data, err := unix.Mmap(-1, 0, dataLen, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := range data {
		data[i] = pattern(i)
	}
	self, err := peermem.Publish()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(hex.EncodeToString(self.Record([]uint64{uint64(uintptr(unsafe.Pointer(&data[0])))})))
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "closing":
			self.SetClosing()
		case "revoke":
			self.Revoke()
		case "unmap":
			if err := unix.Munmap(data); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		case "exit":
			return 0
		}
		fmt.Println("ok")
	}
	return 0
}

// owner is a running ownerChild.
type owner struct {
	t    *testing.T
	in   io.WriteCloser
	out  *bufio.Scanner
	wait func() error
	rec  []byte
}

func startOwner(t *testing.T) *owner {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	cmd := childproc.Command(ctx, "owner")
	cmd.Stderr = childproc.LogWriter(t, "owner: ")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	childproc.Start(t, cmd)
	o := &owner{t: t, in: in, out: bufio.NewScanner(outR), wait: cmd.Wait}
	if !o.out.Scan() {
		t.Fatalf("owner printed no record: %v", cmd.Wait())
	}
	if o.rec, err = hex.DecodeString(o.out.Text()); err != nil {
		t.Fatal(err)
	}
	return o
}

// do sends a command and waits for its "ok".
func (o *owner) do(cmd string) {
	o.t.Helper()
	if _, err := fmt.Fprintln(o.in, cmd); err != nil {
		o.t.Fatal(err)
	}
	if !o.out.Scan() || o.out.Text() != "ok" {
		o.t.Fatalf("%s: no ok from the owner (%q)", cmd, o.out.Text())
	}
}

func attach(t *testing.T, rec []byte) (*peermem.Local, *peermem.Peer) {
	t.Helper()
	self, err := peermem.Publish()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(self.Revoke)
	p, err := peermem.Attach(self, rec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return self, p
}

// checkData fails unless got is the owner's bytes from offset at.
func checkData(t *testing.T, got []byte, at int) {
	t.Helper()
	for i, b := range got {
		if b != pattern(at+i) {
			t.Fatalf("byte %d: %d, want %d", at+i, b, pattern(at+i))
		}
	}
}

// Another process's memory read whole and in parts, its closing seen, and every way
// it can go away reported as ErrGone rather than as data.
func TestReadsAnotherProcess(t *testing.T) {
	o := startOwner(t)
	_, p := attach(t, o.rec)
	if p.Pid == os.Getpid() {
		t.Fatal("the record names this process")
	}
	got := make([]byte, dataLen)
	if err := p.ReadAt(got, p.Addrs[0]); err != nil {
		t.Fatal(err)
	}
	checkData(t, got, 0)
	part := make([]byte, 4097)
	if err := p.ReadAt(part, p.Addrs[0]+12345); err != nil {
		t.Fatal(err)
	}
	checkData(t, part, 12345)
	if err := p.ReadAt(nil, 0); err != nil { // the page alone
		t.Fatal(err)
	}

	if c, err := p.Closing(); err != nil || c {
		t.Fatalf("Closing before the owner closes: %v, %v", c, err)
	}
	o.do("closing")
	if c, err := p.Closing(); err != nil || !c {
		t.Fatalf("Closing after the owner's SetClosing: %v, %v", c, err)
	}
	if err := p.ReadAt(part, p.Addrs[0]); err != nil { // closing is not gone
		t.Fatal(err)
	}

	o.do("revoke")
	clear(part)
	if err := p.ReadAt(part, p.Addrs[0]); !errors.Is(err, peermem.ErrGone) {
		t.Fatalf("read after Revoke: %v, want ErrGone", err)
	}
	if _, err := p.Closing(); !errors.Is(err, peermem.ErrGone) {
		t.Fatalf("Closing after Revoke: %v, want ErrGone", err)
	}
	if _, err := fmt.Fprintln(o.in, "exit"); err != nil {
		t.Fatal(err)
	}
	if err := o.wait(); err != nil {
		t.Fatal(err)
	}
	if err := p.ReadAt(part, p.Addrs[0]); !errors.Is(err, peermem.ErrGone) {
		t.Fatalf("read after exit: %v, want ErrGone", err)
	}
}

// Memory unmapped under a live page, and a process killed, fail with ErrGone.
func TestUnmappedOrKilled(t *testing.T) {
	o := startOwner(t)
	_, p := attach(t, o.rec)
	o.do("unmap")
	buf := make([]byte, 100)
	if err := p.ReadAt(buf, p.Addrs[0]); !errors.Is(err, peermem.ErrGone) {
		t.Fatalf("read of unmapped memory: %v, want ErrGone", err)
	}

	o2 := startOwner(t)
	_, p2 := attach(t, o2.rec)
	if err := p2.ReadAt(buf, p2.Addrs[0]); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(p2.Pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = o2.wait() // reaped: its PID is free for reuse, the pidfd still names the dead process
	if err := p2.ReadAt(buf, p2.Addrs[0]); !errors.Is(err, peermem.ErrGone) {
		t.Fatalf("read of a killed process: %v, want ErrGone", err)
	}
}

// Records from elsewhere are refused before any read.
func TestAttachRefuses(t *testing.T) {
	self, err := peermem.Publish()
	if err != nil {
		t.Fatal(err)
	}
	defer self.Revoke()
	good := self.Record([]uint64{1, 2})
	edit := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	for _, c := range []struct {
		name string
		rec  []byte
		want error
	}{
		{"empty", nil, peermem.ErrRecord},
		{"other magic", edit(func(b []byte) { b[0] = 'X' }), peermem.ErrRecord},
		{"truncated", good[:len(good)-3], peermem.ErrRecord},
		{"other boot", edit(func(b []byte) { b[8] ^= 0xff }), peermem.ErrNotLocal},
		{"other pid namespace", edit(func(b []byte) { b[24] ^= 1 }), peermem.ErrNotLocal},
		{"other token", edit(func(b []byte) { b[48] ^= 1 }), peermem.ErrNotLocal},
		{"no such pid", edit(func(b []byte) { binary.LittleEndian.PutUint64(b[32:], 1<<22+12345) }), peermem.ErrNotLocal},
	} {
		p, err := peermem.Attach(self, c.rec)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if p != nil {
			p.Close()
		}
		if err != nil && !strings.HasPrefix(err.Error(), "peermem: ") {
			t.Errorf("%s: %q does not start with the package", c.name, err)
		}
	}
	if _, err := peermem.Attach(self, good); err != nil {
		t.Errorf("the good record: %v", err)
	}
}
