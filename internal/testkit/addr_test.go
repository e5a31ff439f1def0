package testkit

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

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
