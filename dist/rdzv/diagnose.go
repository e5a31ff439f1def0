package rdzv

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// probeTimeout bounds each connection of diagnose.
const probeTimeout = 2 * time.Second

// diagnose says why etcd at the configured endpoints did not answer, when a direct
// look can tell: the gRPC client only reports that no answer came, which reads the
// same for a host that is down, a port nobody listens on, and a TLS handshake that
// failed (a server that wants TLS given a plain client, an unknown CA, a missing or
// refused client certificate). It returns "" when every endpoint is silent.
func diagnose(cfg config) string {
	found := make([]string, len(cfg.endpoints))
	var wg sync.WaitGroup
	for i, ep := range cfg.endpoints {
		wg.Go(func() { found[i] = probe(cfg, ep) })
	}
	wg.Wait()
	var notes []string
	for _, note := range found {
		if note != "" {
			notes = append(notes, note)
		}
	}
	return strings.Join(notes, "; ")
}

// probe connects to one endpoint as the client would and reports what went wrong.
func probe(cfg config, endpoint string) string {
	addr := strings.TrimPrefix(strings.TrimPrefix(endpoint, "https://"), "http://")
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && strings.Contains(err.Error(), "refused") {
			return fmt.Sprintf("%s: connection refused (nothing listens there)", addr)
		}
		return ""
	}
	defer conn.Close()
	tc, err := cfg.tlsConfig()
	if err != nil {
		return err.Error()
	}
	if tc == nil {
		// A plain client: a server that wants TLS answers the HTTP/2 preface with a
		// TLS alert or by closing the connection, so try a handshake to find out.
		tconn := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only asks whether the server speaks TLS
		_ = tconn.SetDeadline(time.Now().Add(probeTimeout))
		if tconn.Handshake() == nil {
			return fmt.Sprintf("%s speaks TLS, and this client was given no TLS files (--rdzv-cacert, --rdzv-cert, --rdzv-key)", addr)
		}
		return ""
	}
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tconn := tls.Client(conn, tc)
	_ = tconn.SetDeadline(time.Now().Add(probeTimeout))
	if err := tconn.Handshake(); err != nil {
		return fmt.Sprintf("%s: TLS handshake failed: %v", addr, err)
	}
	// TLS 1.3 reports a refused client certificate only on the first read.
	one := make([]byte, 1)
	if _, err := tconn.Read(one); err != nil && !isTimeout(err) && strings.Contains(err.Error(), "tls") {
		return fmt.Sprintf("%s: TLS: the server refused this client: %v", addr, err)
	}
	return ""
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
