package multinode

import (
	"regexp"
	"testing"
	"time"
)

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
		if !regexp.MustCompile(`(?i)etcd`).MatchString(lastLine(out)) {
			t.Errorf("%s: the agent's last words do not name etcd:\n%s", tc.name, out)
		}
	}
	if steps := lastStep(c.out); steps != 0 {
		t.Errorf("a refused agent trained %d steps", steps)
	}
}
