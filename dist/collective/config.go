package collective

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// DefaultTimeout bounds every collective and the connection setup when
// Config.Timeout is zero. It must exceed the longest time one rank can lag
// behind the others (a checkpoint written by rank 0 while the rest wait in
// the next all-reduce).
const DefaultTimeout = 5 * time.Minute

// DefaultName is the group name when Config.Name is empty.
const DefaultName = "world"

// Config describes one rank of a group.
type Config struct {
	// Rank is this process's rank, 0 <= Rank < Size.
	Rank int
	// Size is the number of ranks (the world size), at least 1.
	Size int
	// Store is where the ranks exchange their addresses: a *rdzv.Worker, a
	// TCPStore dialled to rank 0's StoreServer, or anything with the same
	// two methods. It may be nil when Size is 1.
	Store Store
	// Name separates groups that share a store (and a rendezvous round):
	// the keys are "gloo.<Name>.<key>". Default DefaultName.
	Name string
	// Hostname is the address this rank listens on and its peers dial:
	// "127.0.0.1" for tests on loopback, the node's address otherwise.
	// Interface is the alternative: a network interface name ("eth0",
	// "lo"). At most one may be set; with neither, Gloo listens on the
	// local address of the route to MASTER_ADDR when that variable is set
	// (as lrtrain launch does), else on the machine's hostname, resolved.
	Hostname  string
	Interface string
	// Timeout bounds each collective and the connection setup (a context
	// deadline may shorten it). Default DefaultTimeout.
	Timeout time.Duration
	// AbortOn, when closed, aborts the group: pass the rendezvous worker's
	// Done() so that a lost etcd session fails the collectives at once.
	AbortOn <-chan struct{}
	// SharedMemory (Gloo), when positive, moves the collectives through files in
	// /dev/shm instead of TCP if every rank of the group runs on this host: each
	// rank's file holds a window of this many bytes (at least 4096), through
	// which collectives of any size pass a window at a time. 0 keeps TCP. The
	// ranks must agree on it (see the gloo package).
	SharedMemory int64
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Size < 1:
		return fmt.Errorf("%w: world size %d, need at least 1", ErrConfig, c.Size)
	case c.Rank < 0 || c.Rank >= c.Size:
		return fmt.Errorf("%w: rank %d out of range for world size %d", ErrConfig, c.Rank, c.Size)
	case c.Store == nil && c.Size > 1:
		return fmt.Errorf("%w: no store for world size %d", ErrConfig, c.Size)
	case c.Timeout < 0:
		return fmt.Errorf("%w: negative timeout %s", ErrConfig, c.Timeout)
	case c.Hostname != "" && c.Interface != "":
		return fmt.Errorf("%w: both hostname %q and interface %q set", ErrConfig, c.Hostname, c.Interface)
	}
	if strings.ContainsFunc(c.Name, func(r rune) bool { return r == '/' || r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: group name %q contains '/' or a control character", ErrConfig, c.Name)
	}
	return nil
}

// endpoint names where this rank listens, for error messages.
func (c Config) endpoint() string {
	switch {
	case c.Hostname != "":
		return "hostname " + c.Hostname
	case c.Interface != "":
		return "interface " + c.Interface
	}
	if m := os.Getenv("MASTER_ADDR"); m != "" {
		return "the route to MASTER_ADDR " + m
	}
	return "the machine's hostname"
}

// What a backend package (gloo) needs of Config.

// WithDefaults is c with DefaultName and DefaultTimeout where c leaves them zero.
func (c Config) WithDefaults() Config { return c.withDefaults() }

// Validate returns an error wrapping ErrConfig that names the first invalid field.
func (c Config) Validate() error { return c.validate() }

// Endpoint names where the rank listens, for error messages.
func (c Config) Endpoint() string { return c.endpoint() }

// ListenAddress is the numeric address the rank listens on ("" with an Interface):
// Hostname resolved, or, with neither Hostname nor Interface, the local address of the
// route to MASTER_ADDR or the machine's hostname, resolved. A name that does not resolve
// is an error naming it.
func (c Config) ListenAddress(ctx context.Context) (string, error) { return listenAddress(ctx, c) }

// listenAddress resolves the address Gloo listens on: cfg.Hostname; with neither it nor
// an interface set, the local address of this machine's route to MASTER_ADDR when that
// is set (lrtrain launch sets it for every worker: node rank 0's address), else the
// machine's hostname. The route, not the hostname: on a node whose hostname resolves to
// a loopback address (Debian's 127.0.1.1, or a network namespace sharing the host's
// /etc/hosts), Gloo would listen on loopback and give its peers on other nodes an
// address they cannot reach.
//
// Gloo gets a numeric address, never a name: its own lookup (in the libgloo Debian
// ships) checks getaddrinfo's result against -1 only, so a name that does not resolve
// (EAI_NONAME is -2) sends it walking an uninitialised list, which crashes the process
// at random. Here such a name is an error that names it.
func listenAddress(ctx context.Context, cfg Config) (string, error) {
	if cfg.Interface != "" {
		return "", nil
	}
	host := cfg.Hostname
	if host == "" {
		if master := os.Getenv("MASTER_ADDR"); master != "" {
			return routeSource(ctx, master)
		}
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("this machine's hostname: %w (set a hostname or an interface)", err)
		}
		host = h
	}
	return resolve(ctx, host, "hostname")
}

// routeSource is the local address of the route to master (MASTER_ADDR): the address
// of the interface that faces it.
func routeSource(ctx context.Context, master string) (string, error) {
	ip, err := resolve(ctx, master, "MASTER_ADDR")
	if err != nil {
		return "", err
	}
	// A UDP "connection" sends nothing; it only picks the route and its source.
	conn, err := net.Dial("udp", net.JoinHostPort(ip, "9"))
	if err != nil {
		return "", fmt.Errorf("no route to MASTER_ADDR %s: %w", master, err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// resolve returns host itself when it is numeric, else its first IPv4 address (peers
// most often reach that), else its first address; what names what host is.
func resolve(ctx context.Context, host, what string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return host, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("no address")
	}
	if err != nil {
		return "", fmt.Errorf("%s %q does not resolve: %w", what, host, err)
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return a.IP.String(), nil
		}
	}
	return addrs[0].IP.String(), nil
}
