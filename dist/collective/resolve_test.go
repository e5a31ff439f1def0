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
