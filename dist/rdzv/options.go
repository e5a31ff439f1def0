package rdzv

import (
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.uber.org/zap"
)

// Defaults for the options. The timeouts follow torchrun's where it has one.
const (
	DefaultEndpoint       = "127.0.0.1:2379"
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
	DefaultTTL            = 10 * time.Second
	DefaultLastCall       = 30 * time.Second
	DefaultJoinTimeout    = 10 * time.Minute
	DefaultWaitTimeout    = 5 * time.Minute
)

type config struct {
	endpoints      []string
	tlsFiles       *transport.TLSInfo
	username       string
	password       string
	dialTimeout    time.Duration
	requestTimeout time.Duration
	ttl            time.Duration
	agentID        string
	hostname       string
	addr           string
	nproc          int
	minNodes       int
	maxNodes       int
	lastCall       time.Duration
	joinTimeout    time.Duration
	waitTimeout    time.Duration
	logger         *zap.Logger
}

// Option configures an Agent or a Worker.
type Option func(*config)

// WithEndpoints sets the etcd endpoints, "host:port" or "http(s)://host:port"
// (default DefaultEndpoint).
func WithEndpoints(endpoints ...string) Option {
	return func(c *config) { c.endpoints = endpoints }
}

// WithTLSFiles enables TLS with a client certificate and key and the CA that
// signed the server's certificate (PEM files; cert and key may be empty for
// server-only TLS).
func WithTLSFiles(certFile, keyFile, caFile string) Option {
	return func(c *config) {
		c.tlsFiles = &transport.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile}
	}
}

// WithAuth sets etcd's username and password.
func WithAuth(username, password string) Option {
	return func(c *config) { c.username, c.password = username, password }
}

// WithDialTimeout bounds connecting to etcd, and granting a new lease after
// the session was lost, when etcd has just been unanswered for a TTL
// (default DefaultDialTimeout).
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithRequestTimeout bounds every single etcd request (default
// DefaultRequestTimeout).
func WithRequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

// WithTTL sets the session lease's time to live, rounded up to whole seconds
// (default DefaultTTL; etcd raises very short TTLs to its minimum, about 2 s
// with default election settings). A dead agent is noticed within the TTL;
// an etcd that stops answering ends the session within the TTL. Keepalives
// go every TTL/6 (0.25 to 2 s), so a stall of etcd or of this process (a
// loaded machine) of up to the TTL less one interval is survived: 2.5 s at
// the smallest TTL lrtrain supports, 3 s (tested under load); 8.3 s at 10 s.
func WithTTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// WithAgentID names the agent (default "<hostname>-<pid>-<n>-<random>", n counting
// this process's agents, so that two agents of one process never share an id). Node
// ranks follow the sorted agent ids, so stable ids give stable ranks.
func WithAgentID(id string) Option { return func(c *config) { c.agentID = id } }

// WithHostname sets the hostname recorded for the node (default os.Hostname).
func WithHostname(h string) Option { return func(c *config) { c.hostname = h } }

// WithAddress sets an address ("host:port") recorded for the node, for peers
// that need to reach it.
func WithAddress(addr string) Option { return func(c *config) { c.addr = addr } }

// WithNproc sets the number of worker processes on this node (default 1).
func WithNproc(n int) Option { return func(c *config) { c.nproc = n } }

// WithNodes sets the minimum and maximum number of nodes of a round
// (default 1 and 1).
func WithNodes(min, max int) Option { return func(c *config) { c.minNodes, c.maxNodes = min, max } }

// WithLastCall sets how long a round with at least min but fewer than max
// nodes waits for more before it freezes (default DefaultLastCall).
func WithLastCall(d time.Duration) Option { return func(c *config) { c.lastCall = d } }

// WithJoinTimeout bounds Join (default DefaultJoinTimeout).
func WithJoinTimeout(d time.Duration) Option { return func(c *config) { c.joinTimeout = d } }

// WithWaitTimeout bounds Lookup and Barrier (default DefaultWaitTimeout).
func WithWaitTimeout(d time.Duration) Option { return func(c *config) { c.waitTimeout = d } }

// WithLogger sets the etcd client's logger (default: errors only, on stderr).
func WithLogger(lg *zap.Logger) Option { return func(c *config) { c.logger = lg } }

// agentSeq counts the agents this process names by default: the random suffix alone
// lets two agents of one process (tests, several launchers) draw the same id.
var agentSeq atomic.Uint64

func newConfig(opts []Option) (config, error) {
	c := config{
		endpoints:      []string{DefaultEndpoint},
		dialTimeout:    DefaultDialTimeout,
		requestTimeout: DefaultRequestTimeout,
		ttl:            DefaultTTL,
		nproc:          1,
		minNodes:       1,
		maxNodes:       1,
		lastCall:       DefaultLastCall,
		joinTimeout:    DefaultJoinTimeout,
		waitTimeout:    DefaultWaitTimeout,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return c, fmt.Errorf("%w: hostname: %w", ErrConfig, err)
		}
		c.hostname = h
	}
	if c.agentID == "" {
		c.agentID = fmt.Sprintf("%s-%d-%d-%04x", c.hostname, os.Getpid(), agentSeq.Add(1), rand.IntN(1<<16))
	}
	if c.logger == nil {
		lg, err := zap.NewProduction(zap.IncreaseLevel(zap.ErrorLevel))
		if err != nil {
			return c, fmt.Errorf("%w: logger: %w", ErrConfig, err)
		}
		c.logger = lg
	}
	return c, c.validate()
}

func (c *config) validate() error {
	switch {
	case len(c.endpoints) == 0:
		return fmt.Errorf("%w: no etcd endpoints", ErrConfig)
	case c.nproc < 1:
		return fmt.Errorf("%w: nproc %d < 1", ErrConfig, c.nproc)
	case c.minNodes < 1 || c.maxNodes < c.minNodes:
		return fmt.Errorf("%w: nodes %d:%d, want 1 <= min <= max", ErrConfig, c.minNodes, c.maxNodes)
	case c.dialTimeout <= 0 || c.requestTimeout <= 0 || c.ttl <= 0 || c.lastCall < 0 ||
		c.joinTimeout <= 0 || c.waitTimeout <= 0:
		return fmt.Errorf("%w: timeouts and TTL must be positive", ErrConfig)
	}
	return checkName("agent id", c.agentID)
}

// ttlSeconds is the TTL rounded up to whole seconds, as etcd leases want.
func (c *config) ttlSeconds() int64 {
	return int64((c.ttl + time.Second - 1) / time.Second)
}

// tlsConfig builds the client TLS configuration, nil without TLS.
func (c *config) tlsConfig() (*tls.Config, error) {
	if c.tlsFiles == nil {
		return nil, nil
	}
	tc, err := c.tlsFiles.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: TLS files (cert %q, key %q, CA %q): %w",
			ErrConfig, c.tlsFiles.CertFile, c.tlsFiles.KeyFile, c.tlsFiles.TrustedCAFile, err)
	}
	return tc, nil
}
