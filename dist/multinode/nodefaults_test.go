package multinode

import (
	"strings"
	"testing"
	"time"
)

// stopBound is how long any rank of a round may run on once a node's link is down:
// the collective timeout (a rank blocked in an all-reduce gives up after it) plus
// the launcher's grace period (SIGTERM → SIGKILL), with 5 s for a loaded machine.
const stopBound = collectiveTimeout + grace + 5*time.Second

// A node's link goes down in the middle of a step (three nodes training, --nnodes
// 1:3): every rank of that round stops within stopBound, the two remaining nodes form
// a round of world size 2 that resumes from the last checkpoint, the cut-off node's
// agent gives up saying etcd is unreachable; then the link comes back, the node's
// agent is started again, joins, and a round of world size 3 finishes the run. The
// final adapter is byte for byte that of the same rounds trained on loopback.
func TestNodeLinkDownThenRejoins(t *testing.T) {
	needHarness(t)
	c := newCluster(t, 3, false)
	c.startAll(t, "1:3")
	// Step 12: between two checkpoints (every 5), so that the run only loses nothing
	// if rank 0 saves its last completed step when the round is stopped.
	c.waitStep(t, 12, 3*time.Minute)
	victim := c.agents[2]
	round0 := c.workers()
	if len(round0) != 3 {
		t.Fatalf("round 0 workers %v, want 3\n%s", round0, c.agentsOutput())
	}
	at := lastStep(c.out)
	cut := time.Now()
	if err := c.net.Cut(victim.node); err != nil {
		t.Fatal(err)
	}
	stopped := map[int]time.Duration{}
	waitFor(stopBound, func() bool {
		for _, pid := range round0 {
			if _, ok := stopped[pid]; !ok && !alive(pid) {
				stopped[pid] = time.Since(cut)
			}
		}
		return len(stopped) == len(round0)
	})
	t.Logf("%s cut at step %d (%s): round-0 workers stopped after %v (pid → time)", victim.node.Name, at, cut.Format("15:04:05.000"), stopped)
	if len(stopped) != len(round0) {
		t.Fatalf("round-0 workers still running %v after the cut: stopped %v\n%s", stopBound, stopped, c.agentsOutput())
	}
	if err := victim.Wait(ttl + dialTimeout + grace + 20*time.Second); err == nil ||
		!strings.Contains(strings.ToLower(victim.Output(2000)), "etcd") {
		t.Fatalf("the cut-off agent: %v, want an exit naming etcd\n%s", err, victim.Output(3000))
	}
	_, exited := victim.Exited()
	t.Logf("the cut-off agent exited %v after the cut: %v", exited.Sub(cut).Round(time.Millisecond), lastLine(victim.Output(2000)))
	var r1 round
	if !waitFor(2*time.Minute, func() bool {
		rs := c.rounds(t)
		if len(rs) < 2 {
			return false
		}
		r1 = rs[len(rs)-1]
		return lastStep(c.out) >= r1.from+10
	}) {
		t.Fatalf("no round after the cut trained 10 steps within 2 minutes: rounds %+v\n%s", c.rounds(t), c.agentsOutput())
	}
	if r1.world != 2 {
		t.Errorf("the round after the cut: %+v, want world size 2", r1)
	}
	t.Logf("round %d (world %d) resumed from step %d, %v after the cut", r1.number, r1.world, r1.from, time.Since(cut).Round(time.Second))

	if err := c.net.Heal(victim.node); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	c.start(t, 2, "1:3")
	c.agents = append(c.agents[:2], c.agents[3]) // the cut-off agent has exited
	c.waitAll(t, 5*time.Minute)
	rs := c.rounds(t)
	last := rs[len(rs)-1]
	t.Logf("rounds %+v; the rejoined node trained from step %d (%v after it came back)", rs, last.from, time.Since(back).Round(time.Second))
	if last.world != 3 {
		t.Errorf("last round %+v, want world size 3 once the node rejoined", last)
	}
	ref := reference(t, c.ref, segments(rs, steps))
	if same, d, m := compareAdapters(t, adapterFile(ref, steps), adapterFile(c.out, steps)); !same {
		t.Errorf("final adapter differs from the reference %+v: max |Δ| %.3g (max |value| %.3g)", segments(rs, steps), d, m)
	} else {
		t.Logf("final adapter byte-identical to the reference %+v", segments(rs, steps))
	}
}

// One node's link gets 100 ms of delay and 1 % loss each way (as netem on both ends)
// for a while: training slows down but goes on in the same round, and the final
// adapter is byte for byte the uninterrupted run's.
func TestSlowLossyLink(t *testing.T) {
	needHarness(t)
	c := newCluster(t, 3, true)
	c.startAll(t, "3")
	c.waitStep(t, 10, 3*time.Minute)
	rate := func(d time.Duration) float64 {
		s0, t0 := lastStep(c.out), time.Now()
		time.Sleep(d)
		return float64(lastStep(c.out)-s0) / time.Since(t0).Seconds()
	}
	clean := rate(3 * time.Second)
	c.link.Set(100*time.Millisecond, 0.01)
	f0, d0 := c.link.Stats()
	at, s0 := time.Now(), lastStep(c.out)
	if !waitFor(3*time.Minute, func() bool { return time.Since(at) >= faultHold && lastStep(c.out) >= s0+10 }) {
		t.Fatalf("fewer than 10 steps in 3 minutes over the slow link\n%s", c.agentsOutput())
	}
	slow := float64(lastStep(c.out)-s0) / time.Since(at).Seconds()
	f1, d1 := c.link.Stats()
	c.link.Set(0, 0)
	c.waitAll(t, 5*time.Minute)
	rs := c.rounds(t)
	lost, failed := c.agentMessages("rendezvous session lost"), c.agentMessages("worker failed")
	t.Logf("100 ms + 1 %% loss on %s for %v: %.1f steps/s before, %.2f during; frames forwarded %d, dropped %d; rounds %+v; sessions lost %d; worker failures %d",
		c.nodes[2].Name, time.Since(at).Round(time.Second), clean, slow, f1-f0, d1-d0, rs, lost, failed)
	if len(rs) != 1 || lost != 0 || failed != 0 {
		t.Errorf("the run restarted over a slow link\n%s", c.agentsOutput())
	}
	if d1 == d0 {
		t.Errorf("no frame was dropped at 1 %% loss")
	}
	ref := reference(t, c.ref, segments(rs, steps))
	if same, d, m := compareAdapters(t, adapterFile(ref, steps), adapterFile(c.out, steps)); !same {
		t.Errorf("final adapter differs from the reference: max |Δ| %.3g (max |value| %.3g)", d, m)
	} else {
		t.Logf("final adapter byte-identical to the reference %+v", segments(rs, steps))
	}
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
