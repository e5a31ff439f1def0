package collective

import (
	"context"
	"fmt"
	"net"
	"os"
)

// listenAddress resolves the address Gloo listens on: cfg.Hostname, or the machine's
// hostname when neither it nor an interface is set. Gloo gets a numeric address, never
// a name: its own lookup (in the libgloo Debian ships) checks getaddrinfo's result
// against -1 only, so a name that does not resolve (EAI_NONAME is -2) sends it walking
// an uninitialised list, which crashes the process at random. Here such a name is an
// error that names it.
func listenAddress(ctx context.Context, cfg Config) (string, error) {
	if cfg.Interface != "" {
		return "", nil
	}
	host := cfg.Hostname
	if host == "" {
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("this machine's hostname: %w (set a hostname or an interface)", err)
		}
		host = h
	}
	if ip := net.ParseIP(host); ip != nil {
		return host, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("no address")
	}
	if err != nil {
		return "", fmt.Errorf("hostname %q does not resolve: %w", host, err)
	}
	for _, a := range addrs { // IPv4 first, as peers most often reach it
		if a.IP.To4() != nil {
			return a.IP.String(), nil
		}
	}
	return addrs[0].IP.String(), nil
}
