package etcdembed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNotReady: the server did not become ready within the ready timeout
	// (or the caller's context ended first).
	ErrNotReady = errors.New("etcdembed: server not ready")
	// ErrStart: the server could not be configured or started.
	ErrStart = errors.New("etcdembed: cannot start server")
)

// Defaults for Start's options.
const (
	DefaultName         = "lrtrain-etcd"
	DefaultReadyTimeout = 30 * time.Second
	DefaultLogLevel     = "error"
)

// portAttempts bounds the retries when a free port picked by the OS is taken
// by someone else before etcd binds it.
const portAttempts = 5

type config struct {
	name         string
	clientPort   int
	readyTimeout time.Duration
	logLevel     string
	fsync        bool
	// Cluster mode (cluster.go).
	host               string
	peerPort           int
	cluster            map[string]string
	clientTLS, peerTLS *TLSFiles
}

// Option configures Start.
type Option func(*config)

// WithName sets the member name (default DefaultName).
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithClientPort makes the server listen for clients on this port (of
// 127.0.0.1, or of the WithHost address) instead of a free one (0 keeps the
// default).
func WithClientPort(port int) Option { return func(c *config) { c.clientPort = port } }

// WithReadyTimeout bounds the wait for the server to become ready
// (default DefaultReadyTimeout).
func WithReadyTimeout(d time.Duration) Option { return func(c *config) { c.readyTimeout = d } }

// WithLogLevel sets etcd's zap log level: debug, info, warn, error, panic or
// fatal (default DefaultLogLevel).
func WithLogLevel(level string) Option { return func(c *config) { c.logLevel = level } }

// WithFsync turns fsync of the write-ahead log on (default off: rendezvous
// state is disposable and fsync makes every transaction slow).
func WithFsync(on bool) Option { return func(c *config) { c.fsync = on } }

// Server is a running embedded etcd member.
type Server struct {
	etcd      *embed.Etcd
	endpoint  string
	muted     *atomic.Bool
	closeOnce sync.Once
}

// Start runs an etcd member with its data under dir and waits until it is
// ready. The caller must Close it.
func Start(ctx context.Context, dir string, opts ...Option) (*Server, error) {
	c := config{name: DefaultName, readyTimeout: DefaultReadyTimeout, logLevel: DefaultLogLevel}
	for _, o := range opts {
		o(&c)
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: empty data directory", ErrStart)
	}
	if c.readyTimeout <= 0 {
		return nil, fmt.Errorf("%w: ready timeout %v must be positive", ErrStart, c.readyTimeout)
	}
	if err := c.checkCluster(); err != nil {
		return nil, err
	}
	muted := new(atomic.Bool)
	lg, err := newLogger(c.logLevel, muted)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < portAttempts; attempt++ {
		e, endpoint, err := startOnce(dir, c, lg)
		if err == nil {
			s := &Server{etcd: e, endpoint: endpoint, muted: muted}
			if err := s.waitReady(ctx, c.readyTimeout); err != nil {
				s.Close()
				return nil, err
			}
			return s, nil
		}
		lastErr = err
		// Only a lost race for an OS-picked port is worth another try.
		if c.clientPort != 0 || c.peerPort != 0 || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, lastErr
}

func startOnce(dir string, c config, lg *zap.Logger) (*embed.Etcd, string, error) {
	clientPort, peerPort := c.clientPort, c.peerPort
	var err error
	if clientPort == 0 {
		if clientPort, err = freePort(c.listenHost()); err != nil {
			return nil, "", fmt.Errorf("%w: pick client port: %w", ErrStart, err)
		}
	}
	if peerPort == 0 {
		if peerPort, err = freePort(c.listenHost()); err != nil {
			return nil, "", fmt.Errorf("%w: pick peer port: %w", ErrStart, err)
		}
	}
	clientURL := c.clientURL(clientPort)
	peerURL := c.peerURL(peerPort)

	cfg := embed.NewConfig()
	cfg.Name = c.name
	cfg.Dir = dir
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = cfg.InitialClusterFromName(c.name)
	c.applyCluster(cfg)
	cfg.Logger = "zap"
	cfg.LogLevel = c.logLevel
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	cfg.UnsafeNoFsync = !c.fsync
	// The HTTP/JSON gateway and metrics are of no use to the rendezvous.
	cfg.EnableGRPCGateway = false

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("%w: client %s, peer %s, dir %s: %w",
			ErrStart, clientURL.Host, peerURL.Host, dir, err)
	}
	return e, clientURL.String(), nil
}

func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-s.etcd.Server.ReadyNotify():
		return nil
	case err := <-s.etcd.Err():
		return fmt.Errorf("%w: %s failed while starting: %w", ErrNotReady, s.endpoint, err)
	case <-timer.C:
		return fmt.Errorf("%w: %s not ready after %v", ErrNotReady, s.endpoint, timeout)
	case <-ctx.Done():
		return fmt.Errorf("%w: %s: %w", ErrNotReady, s.endpoint, ctx.Err())
	}
}

// Endpoint is the client URL, "http://127.0.0.1:PORT" ("https://HOST:PORT"
// with WithHost and WithClientTLS).
func (s *Server) Endpoint() string { return s.endpoint }

// Err reports a fatal error of the running server (for example a listener
// that failed); the channel is never closed by a clean Close.
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the server and waits until it has stopped. The raft server
// stops first, which ends open watch and keepalive streams at once; a plain
// graceful stop would wait up to 7 s for clients that are still connected.
// It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.muted.Store(true)
		s.etcd.Server.HardStop()
		s.etcd.Close()
		<-s.etcd.Server.StopNotify()
	})
}

// freePort asks the OS for a free TCP port on host. The port is released
// before etcd binds it, so Start retries if another process takes it in
// between.
func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
