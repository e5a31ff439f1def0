package multinode

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Rendezvous settings of every agent: a dead node or an etcd that stopped answering
// is noticed within ttl (+1 s), and etcd gets dialTimeout to answer a rejoin.
const (
	ttl         = 5 * time.Second
	dialTimeout = 5 * time.Second
	grace       = 5 * time.Second
)

// cluster is a job's world: three etcd hosts (e0–e2, .11–.13) running a TLS cluster,
// training nodes (n0…, .21…) with one agent each, and a host for reference runs
// (.100), all on one bridge.
type cluster struct {
	net    *Net
	etcd   *Etcd
	nodes  []*Host
	link   *Link // the emulated link of the last node, when asked for
	ref    *Host
	dir    string // where the run's files go
	out    string // the run's output directory (shared by the nodes, as on NFS)
	cfg    string
	agents []*agent
}

// agent is one node's `lrtrain launch`.
type agent struct {
	*Proc
	node   *Host
	runDir string
}

// newCluster builds the hosts and starts etcd; with emulated, the last node's link is
// an emulated one (AddEmulatedHost).
func newCluster(t *testing.T, nodes int, emulated bool) *cluster {
	t.Helper()
	dir := scratch(t)
	c := &cluster{net: newNet(t), dir: dir, out: filepath.Join(dir, "out")}
	var etcdHosts []*Host
	for i := range 3 {
		h, err := c.net.AddHost(fmt.Sprintf("e%d", i), 11+i)
		if err != nil {
			t.Fatal(err)
		}
		etcdHosts = append(etcdHosts, h)
	}
	for i := range nodes {
		var h *Host
		var err error
		if emulated && i == nodes-1 {
			h, c.link, err = c.net.AddEmulatedHost(fmt.Sprintf("n%d", i), 21+i, 7)
		} else {
			h, err = c.net.AddHost(fmt.Sprintf("n%d", i), 21+i)
		}
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, h)
	}
	var err error
	if c.ref, err = c.net.AddHost("ref", 100); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	c.etcd, err = StartEtcd(etcdHosts, filepath.Join(dir, "etcd"), time.Minute)
	t.Cleanup(func() { // before the Net's cleanup, which reports what it still finds
		if c.etcd == nil {
			return
		}
		for _, m := range c.etcd.Members {
			m.Kill()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("etcd: 3 members over mutual TLS ready in %v", time.Since(t0).Round(time.Millisecond))
	c.cfg = trainConfig(t, c.out, steps)
	return c
}

// start starts node i's agent: `lrtrain launch` over the TLS etcd cluster, one worker
// with one intra-op thread, nnodes as given ("3", "1:3").
func (c *cluster) start(t *testing.T, i int, nnodes string) *agent {
	t.Helper()
	return c.startTLS(t, i, nnodes, c.etcd.TLSArgs())
}

// startTLS is start with the given TLS flags instead of the cluster's.
func (c *cluster) startTLS(t *testing.T, i int, nnodes string, tlsArgs []string) *agent {
	t.Helper()
	h := c.nodes[i]
	runDir := filepath.Join(c.dir, fmt.Sprintf("agent%d-%s", len(c.agents), h.Name))
	args := []string{"launch", "--nnodes", nnodes, "--nproc-per-node", "1", "--node-rank", strconv.Itoa(i),
		"--rdzv-endpoint", c.etcd.Endpoints(), "--rdzv-id", "multinode", "--rdzv-ttl", ttl.String(),
		"--rdzv-dial-timeout", dialTimeout.String(), "--rdzv-last-call", "2s", "--rdzv-join-timeout", "120s",
		"--max-restarts", "3", "--grace-period", grace.String(), "--exit-barrier-timeout", "120s", "--run-dir", runDir}
	args = append(args, tlsArgs...)
	args = append(args, "--", "train", "--config", c.cfg)
	p, err := h.Start("agent "+h.Name, runDir+".log", []string{"OMP_NUM_THREADS=1"}, append([]string{buildLrtrain(t)}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	a := &agent{Proc: p, node: h, runDir: runDir}
	c.agents = append(c.agents, a)
	return a
}

// startAll starts an agent on every node.
func (c *cluster) startAll(t *testing.T, nnodes string) {
	t.Helper()
	for i := range c.nodes {
		c.start(t, i, nnodes)
	}
}

// waitStep waits until the run has logged step s, failing after d.
func (c *cluster) waitStep(t *testing.T, s int, d time.Duration) {
	t.Helper()
	if !waitFor(d, func() bool { return lastStep(c.out) >= s }) {
		t.Fatalf("step %d not reached within %v (last step %d)\n%s", s, d, lastStep(c.out), c.agentsOutput())
	}
}

// waitAll waits up to d for every agent to exit and fails unless all exit 0.
func (c *cluster) waitAll(t *testing.T, d time.Duration) {
	t.Helper()
	for _, a := range c.agents {
		if err := a.Wait(d); err != nil {
			t.Fatalf("%s: %v\n%s", a.Name, err, c.agentsOutput())
		}
	}
}

// agentsOutput is the tail of every agent's log, for failure messages.
func (c *cluster) agentsOutput() string {
	var b strings.Builder
	for _, a := range c.agents {
		fmt.Fprintf(&b, "--- %s (pid %d):\n%s\n", a.Name, a.Pid(), a.Output(3000))
	}
	return b.String()
}

// workers lists the live worker processes of every running agent.
func (c *cluster) workers() []int {
	var pids []int
	for _, a := range c.agents {
		if done, _ := a.Exited(); !done {
			for _, p := range a.Children() {
				if alive(p) {
					pids = append(pids, p)
				}
			}
		}
	}
	return pids
}

// round is what the run's rank 0 said when a round started training.
type round struct {
	number, world, from int
}

var roundDir = regexp.MustCompile(`round(\d+)$`)

// rounds lists the rounds that started training, in order, from rank 0's worker
// logs (rank 0 runs on whichever node has node rank 0 in that round).
func (c *cluster) rounds(t *testing.T) []round {
	t.Helper()
	found := map[int]round{}
	for _, a := range c.agents {
		dirs, _ := filepath.Glob(filepath.Join(a.runDir, "logs", "round*"))
		for _, d := range dirs {
			m := roundDir.FindStringSubmatch(d)
			b, err := os.ReadFile(filepath.Join(d, "rank0.log"))
			if m == nil || err != nil {
				continue
			}
			n, _ := strconv.Atoi(m[1])
			for _, r := range jsonLines(string(b)) {
				if r["message"] == "training" {
					w, _ := r["world_size"].(float64)
					s, _ := r["start_step"].(float64)
					found[n] = round{number: n, world: int(w), from: int(s)}
				}
			}
		}
	}
	var out []round
	for n := 0; len(out) < len(found); n++ {
		if r, ok := found[n]; ok {
			out = append(out, r)
		}
		if n > 1000 {
			t.Fatalf("round numbers %v", found)
		}
	}
	return out
}

// segments turns the rounds into the reference's segments, ending at the last step.
func segments(rs []round, last int) []segment {
	var segs []segment
	for i, r := range rs {
		to := last
		if i+1 < len(rs) {
			to = rs[i+1].from
		}
		if to > r.from {
			segs = append(segs, segment{world: r.world, from: r.from, to: to})
		}
	}
	return segs
}

// agentMessages counts the JSON log lines of every agent whose message contains s.
func (c *cluster) agentMessages(s string) int {
	n := 0
	for _, a := range c.agents {
		for _, r := range jsonLines(a.Output(1 << 22)) {
			if m, _ := r["message"].(string); strings.Contains(m, s) {
				n++
			}
		}
	}
	return n
}

// scratch is a directory for a test's files: t.TempDir(), or a fresh directory
// named after the test under $LRTRAIN_MULTINODE_KEEP, kept for a post-mortem.
func scratch(t *testing.T) string {
	t.Helper()
	keep := os.Getenv("LRTRAIN_MULTINODE_KEEP")
	if keep == "" {
		return t.TempDir()
	}
	dir := filepath.Join(keep, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}
