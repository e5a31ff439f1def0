package multinode

import (
	"testing"
	"time"
)

// Three nodes, one worker each, train over the TLS etcd cluster with no fault: the
// final adapter is byte for byte that of three ranks on loopback.
func TestThreeNodesTrainLikeLoopback(t *testing.T) {
	needHarness(t)
	c := newCluster(t, 3, false)
	t0 := time.Now()
	c.startAll(t, "3")
	c.waitAll(t, 5*time.Minute)
	t.Logf("run: %v", time.Since(t0).Round(time.Millisecond))
	rs := c.rounds(t)
	t.Logf("rounds: %+v", rs)
	t1 := time.Now()
	ref := reference(t, c.ref, segments(rs, steps))
	t.Logf("reference: %v", time.Since(t1).Round(time.Millisecond))
	same, d, m := compareAdapters(t, adapterFile(ref, steps), adapterFile(c.out, steps))
	if !same {
		t.Errorf("final adapter differs from the reference: max |Δ| %.3g (max |value| %.3g)", d, m)
	}
}
