package multinode

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// probeServe starts an echo server on h:port and waits until it listens.
func probeServe(t *testing.T, h *Host, port int) *Proc {
	t.Helper()
	exe, _ := os.Executable()
	p, err := h.Start("echo", filepath.Join(t.TempDir(), "serve.log"),
		[]string{fmt.Sprintf("%s=serve %s:%d", probeEnv, h.IP, port)}, exe)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(100), "listening") {
		if time.Now().After(deadline) {
			t.Fatalf("echo server on %s did not listen:\n%s", h.Name, p.Output(2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// probePing times n round trips from h to addr.
func probePing(t *testing.T, h *Host, addr string, n int) probeResult {
	t.Helper()
	exe, _ := os.Executable()
	p, err := h.Start("ping", filepath.Join(t.TempDir(), "ping.log"), []string{fmt.Sprintf("%s=ping %s %d", probeEnv, addr, n)}, exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(time.Minute); err != nil {
		t.Fatalf("ping from %s: %v\n%s", h.Name, err, p.Output(2000))
	}
	var res probeResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(p.Output(1<<20))), &res); err != nil {
		t.Fatalf("ping output: %v\n%s", err, p.Output(2000))
	}
	return res
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// Hosts reach each other through the bridge; a cut link makes a host unreachable
// (silently: the connection attempt gets no answer, nothing refuses it) and healing it
// restores the path; the caller's own namespace never sees the hosts' addresses.
func TestNetCutAndHeal(t *testing.T) {
	needHarness(t)
	n := newNet(t)
	a, err := n.AddHost("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.AddHost("b", 2)
	if err != nil {
		t.Fatal(err)
	}
	probeServe(t, b, 7000)
	addr := b.IP + ":7000"
	if res := probePing(t, a, addr, 20); res.Err != "" || len(res.RTTs) != 20 {
		t.Fatalf("a → b before the cut: %+v", res)
	}
	if out, _ := exec.Command("ip", "-o", "addr").Output(); strings.Contains(string(out), "10.200.0.") {
		t.Fatalf("a host address appeared in the caller's namespace:\n%s", out)
	}
	if err := n.Cut(b); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	res := probePing(t, a, addr, 1)
	// Silence, not a refusal: the connect times out (or, once a's neighbour entry for b
	// has aged out, finds no route to it).
	if res.Err == "" || strings.Contains(res.Err, "refused") {
		t.Fatalf("a → b with b's link cut: %+v, want a connect that gets no answer", res)
	}
	t.Logf("with b cut, a's connect gave up after %v: %s", time.Since(t0).Round(time.Millisecond), res.Err)
	if err := n.Heal(b); err != nil {
		t.Fatal(err)
	}
	if res := probePing(t, a, addr, 5); res.Err != "" {
		t.Fatalf("a → b after healing: %+v", res)
	}
}

// The emulated link delays every frame by the configured time in each direction and
// drops the configured fraction: the median TCP round trip over it grows by twice
// the delay (one frame each way), and the loss counter follows the rate.
func TestEmulatedLinkDelaysAndDrops(t *testing.T) {
	needHarness(t)
	n := newNet(t)
	a, err := n.AddHost("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, link, err := n.AddEmulatedHost("b", 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	probeServe(t, b, 7000)
	clean := probePing(t, a, b.IP+":7000", 20)
	if clean.Err != "" {
		t.Fatalf("clean link: %+v", clean)
	}
	const delay = 50 * time.Millisecond
	link.Set(delay, 0)
	slow := probePing(t, a, b.IP+":7000", 10)
	if slow.Err != "" {
		t.Fatalf("delayed link: %+v", slow)
	}
	m0, m1 := median(clean.RTTs), median(slow.RTTs)
	t.Logf("median round trip: %v clean, %v with %v each way", m0, m1, delay)
	// At least the two delays (a timer never fires early); at most a generous second.
	if m1 < 2*delay || m1 > 2*delay+time.Second {
		t.Errorf("median round trip %v with %v each way, want 2×delay plus little", m1, delay)
	}
	link.Set(0, 0.2)
	_, dropped0 := link.Stats()
	lossy := probePing(t, a, b.IP+":7000", 20)
	fwd, dropped := link.Stats()
	t.Logf("20%% loss: %d frames forwarded, %d dropped, ping %v", fwd, dropped-dropped0, lossy.Err)
	if dropped-dropped0 == 0 {
		t.Errorf("no frame dropped at 20%% loss")
	}
	link.Set(0, 0)
}

// A namespace left by a dead run (its creator's pid is gone), with a process still
// inside, is removed by Sweep, which kills the process; a namespace of a live run is
// left alone.
func TestSweepRemovesDeadRunsNamespaces(t *testing.T) {
	needHarness(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%s%d-1-x", NamePrefix, dead.Process.Pid)
	live := fmt.Sprintf("%s%d-9999-x", NamePrefix, os.Getpid())
	for _, ns := range []string{stale, live} {
		if err := ip("netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		defer removeNamespace(ns)
	}
	sleeper := exec.Command("ip", "netns", "exec", stale, "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- sleeper.Wait() }()
	if !waitFor(10*time.Second, func() bool { return slices.Contains(namespacePids(stale), sleeper.Process.Pid) }) {
		t.Fatalf("the sleeper did not enter namespace %s", stale)
	}
	removed, err := Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(removed, stale) || slices.Contains(removed, live) {
		t.Fatalf("sweep removed %v; want %s and not %s", removed, stale, live)
	}
	select {
	case err := <-waited:
		if ws, ok := sleeper.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
			t.Errorf("the process in the stale namespace ended with %v, want SIGKILL", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the process in the stale namespace still runs after the sweep")
	}
	if _, err := os.Stat("/run/netns/" + live); err != nil {
		t.Errorf("the live run's namespace is gone: %v", err)
	}
}

// probeEnv runs the test binary as a TCP echo server ("serve IP:PORT") or as a client
// that measures round trips ("ping IP:PORT N"), for the harness's own tests.
const probeEnv = "LRTRAIN_MULTINODE_PROBE"

// probeResult is what a pinging probe prints.
type probeResult struct {
	RTTs []time.Duration `json:"rtts"`
	Err  string          `json:"err"`
}

func runProbeFromEnv() (bool, int) {
	v, ok := os.LookupEnv(probeEnv)
	if !ok {
		return false, 0
	}
	f := strings.Fields(v)
	switch {
	case len(f) == 2 && f[0] == "serve":
		l, err := net.Listen("tcp", f[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			return true, 1
		}
		fmt.Println("listening")
		for {
			c, err := l.Accept()
			if err != nil {
				return true, 1
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	case len(f) == 3 && f[0] == "ping":
		var n int
		fmt.Sscan(f[2], &n)
		res := ping(f[1], n)
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return true, 0
	}
	fmt.Fprintf(os.Stderr, "probe: %s=%q: want \"serve ADDR\" or \"ping ADDR N\"\n", probeEnv, v)
	return true, 2
}

// ping connects to addr and times n one-byte round trips (3 s to connect, 10 s each).
func ping(addr string, n int) probeResult {
	var res probeResult
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer c.Close()
	b := []byte{0}
	for range n {
		t0 := time.Now()
		_ = c.SetDeadline(t0.Add(10 * time.Second))
		if _, err := c.Write(b); err == nil {
			_, err = io.ReadFull(c, b)
		}
		if err != nil {
			res.Err = err.Error()
			return res
		}
		res.RTTs = append(res.RTTs, time.Since(t0))
	}
	return res
}
