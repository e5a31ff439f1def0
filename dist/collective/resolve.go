package collective

import (
	"context"
	"fmt"
	"net"
	"os"
)

// listenAddress resolves the address Gloo listens on: cfg.Hostname; with neither it nor
// an interface set, the local address of this machine's route to MASTER_ADDR when that
// is set (lrtrain launch sets it for every worker: node rank 0's address), else the
// machine's hostname. The route, not the hostname: on a node whose hostname resolves to
// a loopback address (Debian's 127.0.1.1, or a network namespace sharing the host's
// /etc/hosts), Gloo would listen on loopback and give its peers on other nodes an
// address they cannot reach.
//
// Gloo gets a numeric address, never a name: its own lookup (in the libgloo Debian
// ships) checks getaddrinfo's result against -1 only, so a name that does not resolve
// (EAI_NONAME is -2) sends it walking an uninitialised list, which crashes the process
// at random. Here such a name is an error that names it.
func listenAddress(ctx context.Context, cfg Config) (string, error) {
	if cfg.Interface != "" {
		return "", nil
	}
	host := cfg.Hostname
	if host == "" {
		if master := os.Getenv("MASTER_ADDR"); master != "" {
			return routeSource(ctx, master)
		}
		h, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("this machine's hostname: %w (set a hostname or an interface)", err)
		}
		host = h
	}
	return resolve(ctx, host, "hostname")
}

// routeSource is the local address of the route to master (MASTER_ADDR): the address
// of the interface that faces it.
func routeSource(ctx context.Context, master string) (string, error) {
	ip, err := resolve(ctx, master, "MASTER_ADDR")
	if err != nil {
		return "", err
	}
	// A UDP "connection" sends nothing; it only picks the route and its source.
	conn, err := net.Dial("udp", net.JoinHostPort(ip, "9"))
	if err != nil {
		return "", fmt.Errorf("no route to MASTER_ADDR %s: %w", master, err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// resolve returns host itself when it is numeric, else its first IPv4 address (peers
// most often reach that), else its first address; what names what host is.
func resolve(ctx context.Context, host, what string) (string, error) {
	if ip := net.ParseIP(host); ip != nil {
		return host, nil
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("no address")
	}
	if err != nil {
		return "", fmt.Errorf("%s %q does not resolve: %w", what, host, err)
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return a.IP.String(), nil
		}
	}
	return addrs[0].IP.String(), nil
}
