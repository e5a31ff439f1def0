package multinode

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// NamePrefix starts the name of every namespace the harness creates; the rest is
// "<pid>-<n>-<host>", the pid of the process that created it and a counter, so that
// parallel runs never collide and a sweep can tell a dead run's namespaces.
const NamePrefix = "lrtmn"

// Net is a set of network namespaces ("hosts") joined by links to a bridge that
// lives in a namespace of its own. Nothing is created in the caller's namespace:
// all traffic between the hosts stays in namespaces the Net owns.
type Net struct {
	prefix string // "lrtmn<pid>-<n>-"
	bridge string // the bridge's namespace
	subnet string // first three octets, "10.200.0"
	hosts  []*Host
	links  []*Link
	closed bool
}

// Host is one network namespace with one interface, eth0, on the bridge.
type Host struct {
	Name string // as given to AddHost
	NS   string // the namespace ("ip netns exec NS …")
	IP   string // eth0's address
	port string // the interface of its link on the bridge side
	link *Link  // non-nil for an emulated link (AddEmulatedHost)
}

var netCount int

// NewNet creates the bridge's namespace. Hosts get addresses subnet.1 to .254
// ("10.200.0"); the subnet is private to the Net, so two Nets may use the same one.
func NewNet(subnet string) (*Net, error) {
	netCount++
	n := &Net{prefix: fmt.Sprintf("%s%d-%d-", NamePrefix, os.Getpid(), netCount), subnet: subnet}
	n.bridge = n.prefix + "br"
	err := n.run(
		[]string{"netns", "add", n.bridge},
		[]string{"-n", n.bridge, "link", "add", "br0", "type", "bridge"},
		[]string{"-n", n.bridge, "link", "set", "br0", "up"},
	)
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// AddHost creates a namespace joined to the bridge by a veth pair, with address
// subnet.octet on its eth0 and loopback up.
func (n *Net) AddHost(name string, octet int) (*Host, error) {
	h, err := n.newHost(name, octet)
	if err != nil {
		return nil, err
	}
	err = n.run(
		[]string{"-n", n.bridge, "link", "add", h.port, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
		[]string{"-n", n.bridge, "link", "set", h.port, "master", "br0"},
	)
	if err == nil {
		err = n.upHost(h)
	}
	return h, err
}

func (n *Net) newHost(name string, octet int) (*Host, error) {
	if n.closed {
		return nil, errors.New("multinode: the net is closed")
	}
	if octet < 1 || octet > 254 {
		return nil, fmt.Errorf("multinode: host %s: address octet %d out of 1..254", name, octet)
	}
	h := &Host{Name: name, NS: n.prefix + name, IP: n.subnet + "." + strconv.Itoa(octet), port: "p" + strconv.Itoa(octet)}
	n.hosts = append(n.hosts, h)
	return h, n.run([]string{"netns", "add", h.NS})
}

// upHost brings both ends of h's link up and gives eth0 its address.
func (n *Net) upHost(h *Host) error {
	return n.run(
		[]string{"-n", n.bridge, "link", "set", h.port, "up"},
		[]string{"-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
		[]string{"-n", h.NS, "link", "set", "eth0", "up"},
		[]string{"-n", h.NS, "link", "set", "lo", "up"},
	)
}

// Cut takes h's link down on the bridge side, as if its cable were pulled: h keeps
// its address and its sockets, and nothing it sends arrives nor anything sent to it
// (no reset, no error: silence, as a real partition).
func (n *Net) Cut(h *Host) error {
	return n.run([]string{"-n", n.bridge, "link", "set", h.port, "down"})
}

// Heal brings h's link back up.
func (n *Net) Heal(h *Host) error {
	return n.run([]string{"-n", n.bridge, "link", "set", h.port, "up"})
}

// Close kills every process still running in the Net's namespaces, one by one, and
// deletes the namespaces. It returns the killed pids; it is safe to call twice.
func (n *Net) Close() ([]int, error) {
	n.closed = true
	for _, l := range n.links {
		l.Close()
	}
	n.links = nil
	var killed []int
	var errs []error
	names := []string{}
	for _, h := range n.hosts {
		names = append(names, h.NS)
	}
	n.hosts = nil
	names = append(names, n.bridge)
	for _, ns := range names {
		k, err := removeNamespace(ns)
		killed = append(killed, k...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return killed, errors.Join(errs...)
}

// run runs `ip args` for each argument list, stopping at the first failure.
func (n *Net) run(cmds ...[]string) error {
	for _, args := range cmds {
		if err := ip(args...); err != nil {
			return err
		}
	}
	return nil
}

// ip runs iproute2's ip with args; a failure names the command and its output.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("multinode: ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// removeNamespace SIGKILLs the processes living in ns, waits for them to go, and
// deletes it. A namespace that does not exist is no error.
func removeNamespace(ns string) ([]int, error) {
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var killed []int
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := namespacePids(ns)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("multinode: processes %v in namespace %s survive SIGKILL", pids, ns)
		}
		for _, pid := range pids {
			if syscall.Kill(pid, syscall.SIGKILL) == nil && !contains(killed, pid) {
				killed = append(killed, pid)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return killed, ip("netns", "delete", ns)
}

// namespacePids lists the live processes whose network namespace is ns.
func namespacePids(ns string) []int {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Sweep removes the namespaces (and their processes) left by harness runs whose
// process is gone: a run killed before its cleanup could run. Namespaces of live
// runs are left alone. It returns the namespaces it removed.
func Sweep() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("multinode: sweep: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), NamePrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue // not the harness's, or its run is still going
		}
		if _, err := removeNamespace(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// processState is the state letter of /proc/pid/stat, 0 when the process is gone.
func processState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	s := processState(pid)
	return s != 0 && s != 'Z'
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
