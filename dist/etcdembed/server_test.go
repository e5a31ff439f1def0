package etcdembed

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lrtrain/lrtrain/internal/testkit"
)

func TestStartServesClientsAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("etcd; runs without -short")
	}
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	srv, err := Start(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ep := srv.Endpoint()
	if !strings.HasPrefix(ep, "http://127.0.0.1:") {
		t.Fatalf("endpoint %q is not a loopback URL", ep)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get k = %v, want v", resp.Kvs)
	}
	cli.Close()
	if _, err := os.Stat(filepath.Join(dir, "member")); err != nil {
		t.Fatalf("data not under %s: %v", dir, err)
	}
	srv.Close()
	srv.Close() // idempotent

	// After Close the client port is released.
	l, err := net.Listen("tcp", strings.TrimPrefix(ep, "http://"))
	if err != nil {
		t.Fatalf("port of %s still bound after Close: %v", ep, err)
	}
	l.Close()
	testkit.NoGoroutinesLeft(t, before, 4, 5*time.Second) // slack: a few process-wide ones etcd and gRPC start once
}

func TestStartReusesDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("etcd; runs without -short")
	}
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	put(t, srv.Endpoint(), nil, "kept", "yes")
	srv.Close()

	// A second server on the same directory (new ports) sees the data.
	srv, err = Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if got := get(t, srv.Endpoint(), nil, "kept"); got != "yes" {
		t.Fatalf("after restart kept = %q, want yes", got)
	}
}

func TestStartFixedPortInUse(t *testing.T) {
	if testing.Short() {
		t.Skip("etcd; runs without -short")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = Start(context.Background(), t.TempDir(), WithClientPort(port))
	if !errors.Is(err, ErrStart) {
		t.Fatalf("err = %v, want ErrStart", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Fatalf("error %q does not name port %d", err, port)
	}
}

func TestStartReadyTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("etcd; runs without -short")
	}
	// Electing a leader takes at least one 100 ms tick, so 1 ns always
	// expires first.
	t0 := time.Now()
	_, err := Start(context.Background(), t.TempDir(), WithReadyTimeout(time.Nanosecond))
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
	if !strings.Contains(err.Error(), "not ready after") {
		t.Fatalf("error %q does not say what timed out", err)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Fatalf("failed start took %v", d)
	}
}

func TestStartRejectsBadArguments(t *testing.T) {
	if _, err := Start(context.Background(), ""); !errors.Is(err, ErrStart) {
		t.Fatalf("empty dir: err = %v, want ErrStart", err)
	}
	if _, err := Start(context.Background(), t.TempDir(), WithLogLevel("loud")); !errors.Is(err, ErrStart) {
		t.Fatalf("bad log level: err = %v, want ErrStart", err)
	}
}
