package etcdembed

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/lrtrain/lrtrain/internal/testkit"
	"github.com/lrtrain/lrtrain/internal/testpki"
)

// Three members on loopback form one cluster over mutual TLS (peers and clients): a
// key written through one member is read through another; a member that stops and
// starts again on its data directory rejoins and sees what was written meanwhile; a
// client without a certificate of the cluster's CA gets nothing.
func TestClusterOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("etcd: a three-member cluster; runs without -short")
	}
	dir := t.TempDir()
	ca, err := testpki.NewCA(dir, "etcd CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("member", []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	files := TLSFiles{Cert: leaf.CertFile, Key: leaf.KeyFile, CA: ca.CertFile}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srvs, opts, ports, dir := startCluster(ctx, t, dir, files)
	defer func() { closeAll(srvs) }() // srvs[2] is replaced when it restarts
	for i, s := range srvs {
		if want := fmt.Sprintf("https://127.0.0.1:%d", ports[2*i]); s.Endpoint() != want {
			t.Fatalf("member %d endpoint %s, want %s", i, s.Endpoint(), want)
		}
	}
	// They agree on one leader, which is one of them.
	lead := srvs[0].Status().Leader
	ids := map[uint64]bool{}
	for i, s := range srvs {
		st := s.Status()
		ids[st.ID] = true
		if st.Leader != lead || st.Term == 0 {
			t.Errorf("member %d: %+v, want leader %x", i, st, lead)
		}
	}
	if len(ids) != 3 || !ids[lead] {
		t.Errorf("member ids %v, leader %x", ids, lead)
	}
	tc, err := (&transport.TLSInfo{CertFile: leaf.CertFile, KeyFile: leaf.KeyFile, TrustedCAFile: ca.CertFile}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	put(t, srvs[0].Endpoint(), tc, "k", "v1")
	if got := get(t, srvs[2].Endpoint(), tc, "k"); got != "v1" {
		t.Fatalf("read through member 2: %q, want v1", got)
	}

	srvs[2].Close()
	put(t, srvs[1].Endpoint(), tc, "k", "v2") // two of three still make a quorum
	srvs[2], err = Start(ctx, filepath.Join(dir, "2"), opts(2)...)
	if err != nil {
		t.Fatalf("member 2 restarted on its data: %v", err)
	}
	if got := get(t, srvs[2].Endpoint(), tc, "k"); got != "v2" {
		t.Fatalf("restarted member 2 reads %q, want v2", got)
	}

	// No client certificate: the TLS handshake is refused, so the request fails.
	bare, err := (&transport.TLSInfo{TrustedCAFile: ca.CertFile}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srvs[0].Endpoint()}, TLS: bare,
		DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	if _, err := cli.Get(rctx, "k"); err == nil {
		t.Fatal("a client without a certificate read the key")
	}
}

func TestClusterOptionsAreChecked(t *testing.T) {
	peers := map[string]string{"a": "http://127.0.0.1:1001", "b": "http://127.0.0.1:1002"}
	cases := []struct {
		opts []Option
		want string
	}{
		{[]Option{WithHost("node-1")}, `host "node-1" is not a numeric IP`},
		{[]Option{WithName("a"), WithInitialCluster(peers)}, "needs fixed client and peer ports"},
		{[]Option{WithName("c"), WithClientPort(1000), WithPeerPort(1003), WithInitialCluster(peers)}, `does not name this member "c"`},
		{[]Option{WithName("a"), WithClientPort(1000), WithPeerPort(1009), WithInitialCluster(peers)},
			"peer URL http://127.0.0.1:1001, but it advertises http://127.0.0.1:1009"},
		{[]Option{WithClientTLS(TLSFiles{Cert: "c.pem"})}, "client TLS needs a certificate and a key"},
	}
	for _, c := range cases {
		_, err := Start(context.Background(), t.TempDir(), c.opts...)
		if !errors.Is(err, ErrStart) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want ErrStart saying %q", err, c.want)
		}
	}
}

// startCluster starts three members m0, m1, m2 over TLS on free loopback ports, with
// their data under dir/<attempt>/<member>, and returns them with each member's options,
// the ports (client, peer per member) and the data root. freePorts releases the ports
// before etcd binds them and another process may take one meanwhile, so a member that
// fails with EADDRINUSE makes it start all three again on fresh ports (up to 3 times).
func startCluster(ctx context.Context, t *testing.T, dir string, files TLSFiles) ([]*Server, func(int) []Option, []int, string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		ports := freePorts(t, 6)
		peers := map[string]string{}
		for i := range 3 {
			peers[fmt.Sprintf("m%d", i)] = fmt.Sprintf("https://127.0.0.1:%d", ports[2*i+1])
		}
		opts := func(i int) []Option {
			return []Option{WithName(fmt.Sprintf("m%d", i)), WithClientPort(ports[2*i]), WithPeerPort(ports[2*i+1]),
				WithInitialCluster(peers), WithClientTLS(files), WithPeerTLS(files)}
		}
		root := filepath.Join(dir, fmt.Sprint(attempt))
		srvs := make([]*Server, 3)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		for i := range 3 { // a member is ready only once a quorum has started
			wg.Add(1)
			go func() {
				defer wg.Done()
				srvs[i], errs[i] = Start(ctx, filepath.Join(root, fmt.Sprint(i)), opts(i)...)
			}()
		}
		wg.Wait()
		lost := -1 // a member that lost its port; the other two still make a quorum
		for i, err := range errs {
			if errors.Is(err, syscall.EADDRINUSE) {
				lost = i
			}
		}
		for i, err := range errs {
			if err == nil || (lost >= 0 && attempt < 2) {
				continue
			}
			closeAll(srvs)
			t.Fatalf("member %d: %v", i, err)
		}
		if lost < 0 {
			return srvs, opts, ports, root
		}
		t.Logf("attempt %d: member %d lost its port, starting again: %v", attempt, lost, errs[lost])
		closeAll(srvs)
	}
}

// closeAll closes the servers that started (nil ones did not).
func closeAll(srvs []*Server) {
	for _, s := range srvs {
		if s != nil {
			s.Close()
		}
	}
}

// freePorts returns n distinct free loopback ports (held together while picked).
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// client is an etcd client of ep, over TLS with tc (nil: plain).
func client(t *testing.T, ep string, tc *tls.Config) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// put writes k = v through ep (TLS with tc; nil: plain), again while a new leader is elected.
func put(t *testing.T, ep string, tc *tls.Config, k, v string) {
	t.Helper()
	cli := client(t, ep, tc)
	defer cli.Close()
	// A proposal in flight when the leader stops is dropped ("request timed out,
	// possibly due to previous leader failure"); a client retries it once a new leader
	// is elected (an election takes about a second here).
	var err error
	if testkit.Poll(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = cli.Put(ctx, k, v)
		return err == nil
	}) != nil {
		t.Fatalf("put %s through %s: %v", k, ep, err)
	}
}

// get reads k through ep (TLS with tc; nil: plain); "" when absent.
func get(t *testing.T, ep string, tc *tls.Config, k string) string {
	t.Helper()
	cli := client(t, ep, tc)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, k)
	if err != nil {
		t.Fatalf("get %s through %s: %v", k, ep, err)
	}
	if len(resp.Kvs) == 0 {
		return ""
	}
	return string(resp.Kvs[0].Value)
}
