package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"strings"
	"testing"
)

// A server and a client that each hold a leaf of the same CA complete a mutual TLS
// handshake over loopback and exchange bytes; a leaf of another CA is refused by
// the server, and a server certificate is refused for an address it does not name.
func TestLeavesHandshakeMutually(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA(dir, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("server", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Issue("client", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA(t.TempDir(), "other CA")
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := other.Issue("stranger", nil)
	if err != nil {
		t.Fatal(err)
	}
	pool := certPool(t, ca.CertFile)
	serverCert := keyPair(t, srv)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, io.LimitReader(c, 4))
			}()
		}
	}()
	dial := func(host string, leaf Leaf) (string, error) {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{keyPair(t, leaf)}, ServerName: host,
		})
		if err != nil {
			return "", err
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping")); err != nil {
			return "", err
		}
		b, err := io.ReadAll(c)
		return string(b), err
	}
	if got, err := dial("127.0.0.1", cli); err != nil || got != "ping" {
		t.Fatalf("mutual TLS echo = %q, %v; want ping", got, err)
	}
	if _, err := dial("127.0.0.1", stranger); err == nil {
		t.Error("a client certificate of another CA was accepted")
	}
	if _, err := dial("10.9.9.9", cli); err == nil || !strings.Contains(err.Error(), "10.9.9.9") {
		t.Errorf("a server certificate was accepted for an address it does not name: %v", err)
	}
}

func certPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no certificate", path)
	}
	return p
}

func keyPair(t *testing.T, l Leaf) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(l.CertFile, l.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
