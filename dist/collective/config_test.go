package collective

import (
	"context"
	"net"
	"strings"
	"testing"
)

// Gloo is only ever given a numeric address: names are resolved here, and one that
// does not resolve is an error naming it (Gloo's own lookup can crash on it).
func TestListenAddressIsNumeric(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		cfg  Config
		want func(string) bool
	}{
		{Config{Hostname: "127.0.0.1"}, func(s string) bool { return s == "127.0.0.1" }},
		{Config{Hostname: "::1"}, func(s string) bool { return s == "::1" }},
		{Config{Hostname: "localhost"}, func(s string) bool { ip := net.ParseIP(s); return ip != nil && ip.IsLoopback() }},
		{Config{Interface: "lo"}, func(s string) bool { return s == "" }},
	} {
		got, err := listenAddress(ctx, c.cfg)
		if err != nil || !c.want(got) {
			t.Errorf("%+v: %q, %v", c.cfg, got, err)
		}
	}
	if _, err := listenAddress(ctx, Config{Hostname: "no-such-host.invalid"}); err == nil ||
		!strings.Contains(err.Error(), `"no-such-host.invalid" does not resolve`) {
		t.Errorf("unresolvable name: %v", err)
	}
}

// With neither a hostname nor an interface, a worker listens on the address of its
// route to MASTER_ADDR (the interface facing the other nodes), not on what the
// hostname resolves to. The route to ::1 starts at ::1, while the hostname resolves to
// an IPv4 address first, so the answer tells the two rules apart. A MASTER_ADDR that
// does not resolve is an error naming the variable.
func TestListenAddressFollowsTheRouteToTheMaster(t *testing.T) {
	ctx := context.Background()
	t.Setenv("MASTER_ADDR", "::1")
	if got, err := listenAddress(ctx, Config{}); err != nil || got != "::1" {
		t.Errorf("MASTER_ADDR ::1: listen on %q, %v; want ::1", got, err)
	}
	if got, err := listenAddress(ctx, Config{Hostname: "127.0.0.1"}); err != nil || got != "127.0.0.1" {
		t.Errorf("an explicit hostname must win over MASTER_ADDR: %q, %v", got, err)
	}
	t.Setenv("MASTER_ADDR", "no-such-host.invalid")
	if _, err := listenAddress(ctx, Config{}); err == nil || !strings.Contains(err.Error(), `MASTER_ADDR "no-such-host.invalid" does not resolve`) {
		t.Errorf("unresolvable MASTER_ADDR: %v", err)
	}
}
