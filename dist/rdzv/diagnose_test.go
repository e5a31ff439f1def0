package rdzv

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/internal/testpki"
)

// A first connection that fails says why when a direct look can tell: a server that
// wants TLS given a plain client, a client certificate missing or from another CA,
// and a port nobody listens on. Each message still wraps ErrUnreachable.
func TestConnectErrorSaysWhy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an etcd server; runs without -short")
	}
	dir := t.TempDir()
	ca, err := testpki.NewCA(mkdir(t, dir, "ca"), "etcd CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("member", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA(mkdir(t, dir, "other"), "another CA")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Issue("stranger", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.Issue("client", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := etcdembed.Start(context.Background(), filepath.Join(dir, "etcd"),
		etcdembed.WithClientTLS(etcdembed.TLSFiles{Cert: leaf.CertFile, Key: leaf.KeyFile, CA: ca.CertFile}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	closed := testkit.RefusingAddr(t) // held until the test ends: a freed port could be taken

	for _, tc := range []struct {
		name string
		opts []Option
		want string
	}{
		{"plain client", []Option{WithEndpoints(srv.Endpoint())}, `speaks TLS.*--rdzv-cacert`},
		{"CA only", []Option{WithEndpoints(srv.Endpoint()), WithTLSFiles("", "", ca.CertFile)}, `TLS.*(certificate|refused)`},
		{"another CA's certificate", []Option{WithEndpoints(srv.Endpoint()),
			WithTLSFiles(stranger.CertFile, stranger.KeyFile, ca.CertFile)}, `TLS.*(certificate|refused)`},
		{"wrong CA for the server", []Option{WithEndpoints(srv.Endpoint()),
			WithTLSFiles(client.CertFile, client.KeyFile, other.CertFile)}, `TLS handshake failed.*(x509|certificate)`},
		{"nothing listening", []Option{WithEndpoints(closed)}, `connection refused`},
	} {
		opts := append([]Option{WithDialTimeout(2 * time.Second), WithRequestTimeout(2 * time.Second)}, tc.opts...)
		_, err := NewAgent(context.Background(), "diagnose", opts...)
		if err == nil {
			t.Errorf("%s: connected", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if !errors.Is(err, ErrUnreachable) || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
			t.Errorf("%s: %v\nwant ErrUnreachable and a message matching %q", tc.name, err, tc.want)
		}
	}
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
