package testkit

import (
	"fmt"
	"net"
	"syscall"
	"testing"
)

// RefusingAddr is a loopback TCP address ("127.0.0.1:port") at which nothing listens
// and nothing else can, for as long as the test runs: a connection to it is refused
// at once (ECONNREFUSED), the case of a peer, a store or an etcd endpoint that is down.
//
// It is held by a socket that is bound but never listens. The usual way, a listener
// on port 0 closed again right away, leaves the port free, and a process on the same
// machine (another package's test binary under go test ./..., an outgoing connection
// given that port as its local one) may take it before the test dials, which then
// reaches something instead of being refused: a flaky test. A bound socket keeps the
// port (the kernel gives it neither to another bind nor to a connect's local port)
// and is closed when the test ends.
func RefusingAddr(t testing.TB) string {
	t.Helper()
	addr, closeFn, err := refusingAddr()
	if err != nil {
		t.Fatalf("testkit: reserve a refusing loopback port: %v", err)
	}
	t.Cleanup(closeFn)
	return addr
}

// refusingAddr binds a TCP socket to 127.0.0.1 on a port the kernel picks, without
// listening, and returns its address and what closes it.
func refusingAddr() (string, func(), error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("socket: %w", err)
	}
	closeFn := func() { _ = syscall.Close(fd) }
	// No SO_REUSEADDR: with it, another socket without listening could share the port.
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		closeFn()
		return "", nil, fmt.Errorf("bind 127.0.0.1:0: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		closeFn()
		return "", nil, fmt.Errorf("getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		closeFn()
		return "", nil, fmt.Errorf("getsockname: %T, want an IPv4 address", sa)
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(in4.Port)), closeFn, nil
}
