package collective

import (
	"fmt"
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
