package rdzv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
)

// Default agent ids of one process are distinct: with a 16-bit random suffix alone,
// 2000 ids would share one about 30 times (2000²/2 pairs / 65536).
func TestDefaultAgentIDsAreDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		c, err := newConfig([]Option{WithHostname("h"), WithLogger(zap.NewNop())})
		if err != nil {
			t.Fatal(err)
		}
		if seen[c.agentID] {
			t.Fatalf("agent id %s drawn twice", c.agentID)
		}
		seen[c.agentID] = true
	}
}

func TestInvalidOptionsAreRejected(t *testing.T) {
	for name, opts := range map[string][]Option{
		"min above max":      {WithNodes(3, 2)},
		"zero min":           {WithNodes(0, 2)},
		"zero nproc":         {WithNproc(0)},
		"agent id with /":    {WithAgentID("a/b")},
		"no endpoints":       {WithEndpoints()},
		"negative TTL":       {WithTTL(-time.Second)},
		"missing TLS CA":     {WithTLSFiles("", "", "/nonexistent/ca.pem")},
		"zero wait timeout":  {WithWaitTimeout(0)},
		"zero dial timeout":  {WithDialTimeout(0)},
		"negative last call": {WithLastCall(-1)},
	} {
		_, err := NewAgent(context.Background(), "job", opts...)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err = %v, want ErrConfig", name, err)
		}
	}
	for _, job := range []string{"", "a/b", "tab\there"} {
		if _, err := NewAgent(context.Background(), job); !errors.Is(err, ErrConfig) {
			t.Errorf("job %q: err = %v, want ErrConfig", job, err)
		}
	}
}

func TestTTLRoundsUpToWholeSeconds(t *testing.T) {
	for _, c := range []struct {
		ttl  time.Duration
		want int64
	}{{time.Second, 1}, {1500 * time.Millisecond, 2}, {2 * time.Second, 2}, {time.Millisecond, 1}} {
		cfg := config{ttl: c.ttl}
		if got := cfg.ttlSeconds(); got != c.want {
			t.Errorf("ttl %v: %d s, want %d", c.ttl, got, c.want)
		}
	}
}

func TestAssignRanksUsesPrefixSums(t *testing.T) {
	members := []Member{{ID: "n2", Nproc: 4}, {ID: "n0", Nproc: 1}, {ID: "n1", Nproc: 2}}
	world := assignRanks(members)
	if world != 7 {
		t.Fatalf("world %d, want 7", world)
	}
	want := []struct {
		id           string
		rank, offset int
	}{{"n0", 0, 0}, {"n1", 1, 1}, {"n2", 2, 3}}
	for i, w := range want {
		m := members[i]
		if m.ID != w.id || m.NodeRank != w.rank || m.RankOffset != w.offset {
			t.Fatalf("member %d = %+v, want %s rank %d offset %d", i, m, w.id, w.rank, w.offset)
		}
	}
	r := &Round{NodeRank: 2, Members: members}
	if r.GlobalRank(3) != 6 || r.LocalWorldSize() != 4 {
		t.Fatalf("node 2: global rank of local 3 = %d, local world %d; want 6, 4", r.GlobalRank(3), r.LocalWorldSize())
	}
}

func TestTLSFilesBuildClientConfig(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeSelfSigned(t, dir)
	cfg := config{tlsFiles: nil}
	if tc, err := cfg.tlsConfig(); tc != nil || err != nil {
		t.Fatalf("no TLS files: %v, %v; want nil, nil", tc, err)
	}
	WithTLSFiles(cert, key, cert)(&cfg)
	tc, err := cfg.tlsConfig()
	if err != nil {
		t.Fatal(err)
	}
	if tc.RootCAs == nil || tc.GetClientCertificate == nil {
		t.Fatal("TLS config lacks the CA pool or the client certificate")
	}
	if c, err := tc.GetClientCertificate(nil); err != nil || len(c.Certificate) != 1 {
		t.Fatalf("client certificate: %v, %v", c, err)
	}
	WithTLSFiles(cert, filepath.Join(dir, "missing-key.pem"), cert)(&cfg)
	if _, err := cfg.tlsConfig(); !errors.Is(err, ErrConfig) {
		t.Fatalf("missing key file: err = %v, want ErrConfig", err)
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rdzv-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
