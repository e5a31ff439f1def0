package etcdembed

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
)

// Cluster mode: a member of a multi-member cluster listens on a routable
// address (WithHost) at fixed ports (WithClientPort, WithPeerPort), knows the
// other members from the start (WithInitialCluster) and may speak TLS to its
// clients and peers (WithClientTLS, WithPeerTLS). A member restarted on its
// old data directory rejoins the cluster it belonged to; the initial cluster
// is then ignored, as etcd does.

// TLSFiles names PEM files: a certificate, its key, and the CA that signs the
// other side's certificates (CA empty: the other side is not authenticated).
type TLSFiles struct {
	Cert, Key, CA string
}

// WithHost makes the member listen on, and advertise, ip (a numeric IPv4 or
// IPv6 address) for clients and peers instead of 127.0.0.1.
func WithHost(ip string) Option { return func(c *config) { c.host = ip } }

// WithPeerPort makes the member listen for peers on this port instead of a
// free one (0 keeps the default). A member of a cluster needs a fixed one.
func WithPeerPort(port int) Option { return func(c *config) { c.peerPort = port } }

// WithInitialCluster names every member of a new cluster and its peer URL
// ("https://10.0.0.1:2380"); this member's entry must be its own name with
// the peer URL it advertises. Empty: a single-member cluster.
func WithInitialCluster(members map[string]string) Option {
	return func(c *config) { c.cluster = members }
}

// WithClientTLS serves clients over TLS with f.Cert and f.Key; with f.CA,
// clients must present a certificate signed by that CA.
func WithClientTLS(f TLSFiles) Option { return func(c *config) { c.clientTLS = &f } }

// WithPeerTLS makes peer traffic mutual TLS: f.Cert and f.Key identify this
// member, f.CA must have signed the other members' certificates.
func WithPeerTLS(f TLSFiles) Option { return func(c *config) { c.peerTLS = &f } }

// checkCluster validates the cluster options before anything starts, so that
// a mistake is one error naming the option rather than etcd's own complaint.
func (c config) checkCluster() error {
	if c.host != "" && net.ParseIP(c.host) == nil {
		return fmt.Errorf("%w: host %q is not a numeric IP address", ErrStart, c.host)
	}
	for name, f := range map[string]*TLSFiles{"client": c.clientTLS, "peer": c.peerTLS} {
		if f != nil && (f.Cert == "" || f.Key == "") {
			return fmt.Errorf("%w: %s TLS needs a certificate and a key (got cert %q, key %q)", ErrStart, name, f.Cert, f.Key)
		}
	}
	if len(c.cluster) == 0 {
		return nil
	}
	if c.peerPort == 0 || c.clientPort == 0 {
		return fmt.Errorf("%w: member %q of a cluster needs fixed client and peer ports (WithClientPort, WithPeerPort)", ErrStart, c.name)
	}
	own, ok := c.cluster[c.name]
	if !ok {
		return fmt.Errorf("%w: the initial cluster %s does not name this member %q", ErrStart, clusterString(c.cluster), c.name)
	}
	if want := c.peerURL(c.peerPort); own != want.String() {
		return fmt.Errorf("%w: the initial cluster gives member %q the peer URL %s, but it advertises %s",
			ErrStart, c.name, own, want.String())
	}
	for name, u := range c.cluster {
		if _, err := url.Parse(u); err != nil || name == "" || strings.ContainsAny(name, ",=") {
			return fmt.Errorf("%w: initial cluster member %q=%q is not name=URL", ErrStart, name, u)
		}
	}
	return nil
}

// listenHost is the address the member listens on and advertises.
func (c config) listenHost() string {
	if c.host == "" {
		return "127.0.0.1"
	}
	return c.host
}

func (c config) clientURL(port int) url.URL {
	return hostURL(c.clientTLS != nil, c.listenHost(), port)
}

func (c config) peerURL(port int) url.URL {
	return hostURL(c.peerTLS != nil, c.listenHost(), port)
}

func hostURL(tls bool, host string, port int) url.URL {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
}

// applyCluster sets the cluster and TLS fields of etcd's configuration.
func (c config) applyCluster(cfg *embed.Config) {
	if len(c.cluster) > 0 {
		cfg.InitialCluster = clusterString(c.cluster)
		// The token keeps members of another cluster started from the
		// same member list from joining this one.
		cfg.InitialClusterToken = "lrtrain-" + clusterString(c.cluster)
	}
	if f := c.clientTLS; f != nil {
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: f.Cert, KeyFile: f.Key, TrustedCAFile: f.CA, ClientCertAuth: f.CA != ""}
	}
	if f := c.peerTLS; f != nil {
		cfg.PeerTLSInfo = transport.TLSInfo{CertFile: f.Cert, KeyFile: f.Key, TrustedCAFile: f.CA, ClientCertAuth: f.CA != ""}
	}
}

// clusterString is etcd's "name=url,name=url" form, sorted by name.
func clusterString(members map[string]string) string {
	names := make([]string, 0, len(members))
	for n := range members {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + members[n]
	}
	return strings.Join(parts, ",")
}

// Status is a member's view of the cluster's raft state.
type Status struct {
	ID     uint64 // this member
	Leader uint64 // the leader it follows, 0 when it knows none
	Term   uint64 // the raft term
}

// Status returns the member's raft state as it is now.
func (s *Server) Status() Status {
	es := s.etcd.Server
	return Status{ID: uint64(es.MemberID()), Leader: uint64(es.Leader()), Term: es.Term()}
}
