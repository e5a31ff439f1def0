// Package etcdtest starts the real embedded etcd server of package dist/etcdembed
// for a test: a single member on free loopback ports, its data in a directory of
// t.TempDir(), stopped when the test ends (t.Cleanup). A test may stop it earlier
// itself (an outage); Close is safe to call twice.
//
//	srv := etcdtest.Start(t)
//	ep := srv.Endpoint() // "http://127.0.0.1:PORT"
package etcdtest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
)

// Start starts an embedded etcd server with opts (etcdembed's options, applied
// after its loopback defaults) and fails the test if it does not become ready.
func Start(t testing.TB, opts ...etcdembed.Option) *etcdembed.Server {
	t.Helper()
	srv, err := etcdembed.Start(context.Background(), filepath.Join(t.TempDir(), "etcd"), opts...)
	if err != nil {
		t.Fatalf("etcdtest: start the embedded etcd server: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// HostPort is the server's client endpoint without its scheme ("127.0.0.1:PORT"),
// as `lrtrain launch --rdzv-endpoint` takes it.
func HostPort(srv *etcdembed.Server) string {
	ep := srv.Endpoint()
	for _, scheme := range []string{"http://", "https://"} {
		ep = strings.TrimPrefix(ep, scheme)
	}
	return ep
}
