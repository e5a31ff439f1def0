package etcdtest_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/internal/testkit/etcdtest"
)

// The server serves on loopback while the test runs and is gone once it has ended.
func TestServerServesAndStopsWithTheTest(t *testing.T) {
	if testing.Short() {
		t.Skip(testkit.ShortReason("etcd"))
	}
	var hostPort string
	t.Run("serve", func(t *testing.T) {
		srv := etcdtest.Start(t)
		hostPort = etcdtest.HostPort(srv)
		if !strings.HasPrefix(hostPort, "127.0.0.1:") || strings.Contains(hostPort, "/") {
			t.Fatalf("HostPort %q of endpoint %q, want 127.0.0.1:PORT", hostPort, srv.Endpoint())
		}
		put(t, srv)
	})
	// The subtest's cleanup has stopped the server: its port refuses connections.
	c, err := net.DialTimeout("tcp", hostPort, 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after the test ended", hostPort)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", hostPort, err)
	}
}

// Options reach etcdembed: a named member.
func TestStartTakesOptions(t *testing.T) {
	if testing.Short() {
		t.Skip(testkit.ShortReason("etcd"))
	}
	srv := etcdtest.Start(t, etcdembed.WithName("kit-member"))
	put(t, srv)
	srv.Close() // a test may stop it itself; the cleanup's second Close is harmless
}

// put writes a key and reads it back through a real client.
func put(t *testing.T, srv *etcdembed.Server) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srv.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "kit", "ok"); err != nil {
		t.Fatal(err)
	}
	r, err := cli.Get(ctx, "kit")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "ok" {
		t.Fatalf("get kit: %v", r.Kvs)
	}
}
