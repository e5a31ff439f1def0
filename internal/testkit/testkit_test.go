package testkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestPollEndsWhenTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	// The condition holds on its third check; the limit is only a failure bound.
	err := Poll(time.Minute, func() bool { return calls.Add(1) >= 3 })
	if err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("condition checked %d times, want 3", n)
	}
}

func TestPollFailsAfterTheLimit(t *testing.T) {
	var calls atomic.Int32
	err := Poll(time.Millisecond, func() bool { calls.Add(1); return false })
	if err == nil || !strings.Contains(err.Error(), "not within 1ms") {
		t.Fatalf("error %v, want one naming the limit", err)
	}
	// Checked at least at the start and once after the deadline passed.
	if n := calls.Load(); n < 2 {
		t.Errorf("condition checked %d times, want at least 2", n)
	}
}

func TestWaitForFailsTheTestNamingTheEvent(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		WaitFor(ft, time.Millisecond, "the moon", func() bool { return false })
	}()
	<-done
	if !strings.Contains(ft.msg, "waiting for the moon: not within 1ms") {
		t.Errorf("failure %q", ft.msg)
	}
}

func TestShortReason(t *testing.T) {
	if got := ShortReason("multi-process"); got != "multi-process; runs without -short" {
		t.Errorf("ShortReason = %q", got)
	}
}

// fatalRecorder records a Fatalf and ends its goroutine, as testing.T does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestWithinReturnsTheErrorOfACallThatEnds(t *testing.T) {
	boom := fmt.Errorf("boom")
	took, err := Within(t, time.Minute, "the call", func() error { return boom })
	if err != boom || took < 0 || took >= time.Minute {
		t.Errorf("Within = %v, %v; want boom, well within the limit", took, err)
	}
}

func TestWithinFailsTheTestWhenTheCallHangs(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	release := make(chan struct{})
	defer close(release) // ends the hung call's goroutine
	done := make(chan struct{})
	go func() {
		defer close(done)
		Within(ft, time.Millisecond, "the hung call", func() error { <-release; return nil })
	}()
	<-done
	if !strings.Contains(ft.msg, "the hung call still running after 1ms") {
		t.Errorf("failure %q", ft.msg)
	}
}

func TestNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	stop := make(chan struct{})
	// Ten left running: the check fails even if a few goroutines of earlier tests end
	// meanwhile.
	for range 10 {
		go func() { <-stop }()
	}
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		NoGoroutinesLeft(ft, before+1, 0, time.Millisecond) // +1: the goroutine running this check
	}()
	<-done
	if !strings.Contains(ft.msg, "goroutines: ") {
		t.Errorf("a goroutine left running: failure %q, want one", ft.msg)
	}
	close(stop)
	NoGoroutinesLeft(t, before, 0, time.Minute) // the goroutines end: the count comes back
}

func TestDirNames(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b", "a", "c"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := DirNames(t, dir); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("DirNames = %v, want [a b c]", got)
	}
}

// The address refuses a connection at once and cannot be listened on while held.
func TestRefusingAddrRefusesAndStaysTaken(t *testing.T) {
	addr := RefusingAddr(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("RefusingAddr = %q (%v), want 127.0.0.1:port", addr, err)
	}
	// The timeout only bounds a failing test: a refused dial returns at once.
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s succeeded, want ECONNREFUSED", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: %v, want ECONNREFUSED", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		t.Fatalf("listen on %s succeeded while RefusingAddr holds it", addr)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("listen on %s: %v, want EADDRINUSE", addr, err)
	}
}

// Each call holds a port of its own.
func TestRefusingAddrDistinct(t *testing.T) {
	a, b := RefusingAddr(t), RefusingAddr(t)
	if a == b {
		t.Errorf("two calls gave the same address %s", a)
	}
}
