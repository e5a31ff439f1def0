package multinode

import (
	"regexp"
	"testing"
	"time"
)

// faultHold is how long an etcd fault lasts at least: longer than the session TTL plus
// the client's 1 s deadline check, so that a session that depended on the member would
// be lost during it.
const faultHold = ttl + 2*time.Second

// etcdFault is applied to a running job: it returns what it did and a function that
// undoes it.
type etcdFault func(t *testing.T, c *cluster) (what string, undo func())

// runEtcdFault trains three nodes (--nnodes 3) and applies fault from step 10 on for
// faultHold and at least 10 steps; then it undoes it and lets the run finish. It
// reports what restarted and compares the final adapter with a reference that has the
// same rounds (an uninterrupted run when nothing restarted).
func runEtcdFault(t *testing.T, fault etcdFault) {
	c := newCluster(t, 3, false)
	c.startAll(t, "3")
	c.waitStep(t, 10, 3*time.Minute)
	before := lastStep(c.out)
	at := time.Now()
	what, undo := fault(t, c)
	if !waitFor(3*time.Minute, func() bool { return time.Since(at) >= faultHold && lastStep(c.out) >= before+10 }) {
		t.Fatalf("%s: fewer than 10 steps in 3 minutes (step %d at the fault, %d now)\n%s", what, before, lastStep(c.out), c.agentsOutput())
	}
	during := lastStep(c.out) - before
	held := time.Since(at)
	undo()
	c.waitAll(t, 5*time.Minute)
	rs := c.rounds(t)
	lost := c.agentMessages("rendezvous session lost")
	failed := c.agentMessages("worker failed")
	t.Logf("%s at %s: held %v; steps %d→%d during it; rounds %+v; sessions lost %d; worker failures %d",
		what, at.Format("15:04:05.000"), held.Round(time.Millisecond), before, before+during, rs, lost, failed)
	if len(rs) != 1 || lost != 0 || failed != 0 {
		t.Errorf("%s: the run restarted (rounds %+v, sessions lost %d, worker failures %d)\n%s", what, rs, lost, failed, c.agentsOutput())
	}
	ref := reference(t, c.ref, segments(rs, steps))
	if same, d, m := compareAdapters(t, adapterFile(ref, steps), adapterFile(c.out, steps)); !same {
		t.Errorf("%s: final adapter differs from the reference: max |Δ| %.3g (max |value| %.3g)", what, d, m)
	} else {
		t.Logf("%s: final adapter byte-identical to the reference %+v", what, segments(rs, steps))
	}
}

// newLeader waits until the members other than old agree on a leader other than old
// and returns it with the time since since.
func newLeader(t *testing.T, c *cluster, old *Member, since time.Time) (string, time.Duration) {
	t.Helper()
	var lead string
	var at time.Time
	ok := waitFor(30*time.Second, func() bool {
		lead, at = "", time.Time{}
		for _, m := range c.etcd.Members {
			if m == old {
				continue
			}
			st, ok := m.Last()
			if !ok || st.Leader == "0" || st.Leader == old.id() || (lead != "" && st.Leader != lead) {
				return false
			}
			lead = st.Leader
			if st.Time.After(at) {
				at = st.Time
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("no new leader among the other members within 30s")
	}
	return lead, at.Sub(since)
}

func (m *Member) id() string {
	st, _ := m.Last()
	return st.ID
}

// An etcd follower cut off from everyone (its link down) for longer than the TTL:
// the other two keep a quorum and their leader, and training goes on untouched.
func TestEtcdFollowerIsolated(t *testing.T) {
	needHarness(t)
	runEtcdFault(t, func(t *testing.T, c *cluster) (string, func()) {
		lead, err := c.etcd.Leader()
		if err != nil {
			t.Fatal(err)
		}
		victim := c.etcd.Members[0]
		if victim == lead {
			victim = c.etcd.Members[1]
		}
		cut := time.Now()
		if err := c.net.Cut(victim.Host); err != nil {
			t.Fatal(err)
		}
		if !waitFor(30*time.Second, func() bool { st, _ := victim.Last(); return st.Leader == "0" }) {
			t.Fatalf("isolated follower %s still follows a leader after 30 s", victim.Spec.Name)
		}
		t.Logf("follower %s isolated: it lost its leader after %v; leader %s unchanged",
			victim.Spec.Name, time.Since(cut).Round(time.Millisecond), lead.Spec.Name)
		return "follower " + victim.Spec.Name + " isolated", func() { heal(t, c, victim) }
	})
}

// The etcd leader cut off from everyone for longer than the TTL: the other two elect
// a new leader and training goes on.
func TestEtcdLeaderIsolated(t *testing.T) {
	needHarness(t)
	runEtcdFault(t, func(t *testing.T, c *cluster) (string, func()) {
		victim, err := c.etcd.Leader()
		if err != nil {
			t.Fatal(err)
		}
		cut := time.Now()
		if err := c.net.Cut(victim.Host); err != nil {
			t.Fatal(err)
		}
		lead, took := newLeader(t, c, victim, cut)
		t.Logf("leader %s isolated: new leader %s elected %v after the cut", victim.Spec.Name, lead, took.Round(time.Millisecond))
		return "leader " + victim.Spec.Name + " isolated", func() { heal(t, c, victim) }
	})
}

// The etcd leader SIGKILLed, and started again on its data after the TTL: the other
// two elect a new leader, training goes on, and the member rejoins as a follower.
func TestEtcdLeaderKilled(t *testing.T) {
	needHarness(t)
	runEtcdFault(t, func(t *testing.T, c *cluster) (string, func()) {
		victim, err := c.etcd.Leader()
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		victim.Kill()
		lead, took := newLeader(t, c, victim, killed)
		t.Logf("leader %s killed: new leader %s elected %v after", victim.Spec.Name, lead, took.Round(time.Millisecond))
		return "leader " + victim.Spec.Name + " killed", func() {
			t0 := time.Now()
			if err := victim.Restart(time.Minute); err != nil {
				t.Fatal(err)
			}
			if !waitFor(30*time.Second, func() bool { st, _ := victim.Last(); return st.Leader == lead }) {
				st, _ := victim.Last()
				t.Fatalf("restarted member %s follows %s, want %s", victim.Spec.Name, st.Leader, lead)
			}
			t.Logf("member %s restarted on its data: following leader %s after %v", victim.Spec.Name, lead, time.Since(t0).Round(time.Millisecond))
		}
	})
}

// heal brings m's link back and waits until it follows the cluster's leader again.
func heal(t *testing.T, c *cluster, m *Member) {
	t.Helper()
	t0 := time.Now()
	if err := c.net.Heal(m.Host); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { _, err := c.etcd.Leader(); return err == nil }) {
		_, err := c.etcd.Leader()
		t.Fatalf("after healing %s: %v", m.Spec.Name, err)
	}
	lead, _ := c.etcd.Leader()
	t.Logf("%s healed: all members follow %s after %v", m.Spec.Name, lead.Spec.Name, time.Since(t0).Round(time.Millisecond))
}

// Every run of the harness talks to etcd over mutual TLS (the agents and their workers
// with a client certificate, the members with peer certificates); this test shows the
// TLS is enforced: an agent that has only the CA (no client certificate) and one
// without TLS at all are refused, and exit within the dial timeout with an error that
// names etcd.
func TestEtcdRefusesClientsWithoutCertificate(t *testing.T) {
	needHarness(t)
	c := newCluster(t, 1, false)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"CA only, no client certificate", []string{"--rdzv-cacert", c.etcd.CA}},
		{"no TLS", nil},
	} {
		t0 := time.Now()
		a := c.startTLS(t, 0, "1", tc.args)
		err := a.Wait(dialTimeout + 30*time.Second)
		out := a.Output(3000)
		t.Logf("%s: exited after %v: %v: %s", tc.name, time.Since(t0).Round(time.Millisecond), err, lastLine(out))
		if err == nil {
			t.Errorf("%s: the agent was accepted\n%s", tc.name, out)
		}
		if !regexp.MustCompile(`(?i)etcd.*TLS`).MatchString(lastLine(out)) {
			t.Errorf("%s: the agent's last words do not name etcd and TLS:\n%s", tc.name, out)
		}
	}
	if steps := lastStep(c.out); steps != 0 {
		t.Errorf("a refused agent trained %d steps", steps)
	}
}
