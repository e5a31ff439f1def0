package multinode

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
	"github.com/lrtrain/lrtrain/internal/testpki"
)

// Etcd is a cluster of etcd members, one per host, speaking mutual TLS to their
// peers and their clients. Each member is this test binary run again as a member
// (RunMemberFromEnv) in its host's namespace.
type Etcd struct {
	Members []*Member
	CA      string       // the CA certificate that signed every certificate
	Client  testpki.Leaf // a client certificate for lrtrain's --rdzv-cert/--rdzv-key
}

// Member is one etcd member.
type Member struct {
	Spec MemberSpec
	Host *Host
	Proc *Proc
	exe  string
	log  string
}

// StartEtcd issues the certificates (under dir/pki), starts one member on each host
// and waits up to timeout until every member reports ready.
func StartEtcd(hosts []*Host, dir string, timeout time.Duration) (*Etcd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("multinode: etcd: %w", err)
	}
	pki := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pki, 0o755); err != nil {
		return nil, fmt.Errorf("multinode: etcd: %w", err)
	}
	ca, err := testpki.NewCA(pki, "lrtrain multinode CA")
	if err != nil {
		return nil, err
	}
	e := &Etcd{CA: ca.CertFile}
	if e.Client, err = ca.Issue("client", nil); err != nil {
		return nil, err
	}
	peers := map[string]string{}
	for _, h := range hosts {
		peers[h.Name] = "https://" + net.JoinHostPort(h.IP, fmt.Sprint(PeerPort))
	}
	for _, h := range hosts {
		leaf, err := ca.Issue(h.Name, []net.IP{net.ParseIP(h.IP)})
		if err != nil {
			return nil, err
		}
		m := &Member{Host: h, exe: exe, log: filepath.Join(dir, h.Name+".log"), Spec: MemberSpec{
			Name: h.Name, Dir: filepath.Join(dir, h.Name), IP: h.IP, Cluster: peers,
			TLS: etcdembed.TLSFiles{Cert: leaf.CertFile, Key: leaf.KeyFile, CA: ca.CertFile},
		}}
		if err := m.start(); err != nil {
			return e, err
		}
		e.Members = append(e.Members, m)
	}
	for _, m := range e.Members {
		if err := m.waitReady(timeout); err != nil {
			return e, err
		}
	}
	return e, nil
}

// Endpoints is the client endpoint list, "ip:2379,ip:2379,…", for --rdzv-endpoint.
func (e *Etcd) Endpoints() string {
	eps := make([]string, len(e.Members))
	for i, m := range e.Members {
		eps[i] = net.JoinHostPort(m.Host.IP, fmt.Sprint(ClientPort))
	}
	return strings.Join(eps, ",")
}

// TLSArgs are lrtrain launch's flags for this cluster's TLS.
func (e *Etcd) TLSArgs() []string {
	return []string{"--rdzv-cacert", e.CA, "--rdzv-cert", e.Client.CertFile, "--rdzv-key", e.Client.KeyFile}
}

// Leader returns the member that every running member names as its leader, or an
// error when they do not agree (an election is going on, or the cluster is split).
func (e *Etcd) Leader() (*Member, error) {
	var lead string
	for _, m := range e.Members {
		if done, _ := m.Proc.Exited(); done {
			continue
		}
		st, ok := m.Last()
		switch {
		case !ok:
			return nil, fmt.Errorf("multinode: member %s has reported nothing", m.Spec.Name)
		case st.Leader == "0" || (lead != "" && st.Leader != lead):
			return nil, fmt.Errorf("multinode: no agreed leader (member %s follows %s, another %s)", m.Spec.Name, st.Leader, lead)
		}
		lead = st.Leader
	}
	for _, m := range e.Members {
		if st, ok := m.Last(); ok && st.ID == lead {
			return m, nil
		}
	}
	return nil, fmt.Errorf("multinode: leader %s is not a member", lead)
}

func (m *Member) start() error {
	spec, err := json.Marshal(m.Spec)
	if err != nil {
		return fmt.Errorf("multinode: member %s: %w", m.Spec.Name, err)
	}
	m.Proc, err = m.Host.Start("etcd "+m.Spec.Name, m.log, []string{MemberEnv + "=" + string(spec)}, m.exe)
	return err
}

// Kill SIGKILLs the member.
func (m *Member) Kill() { m.Proc.Kill() }

// Restart starts the member again on its data directory (it rejoins the cluster)
// and waits until it reports ready.
func (m *Member) Restart(timeout time.Duration) error {
	if done, _ := m.Proc.Exited(); !done {
		return fmt.Errorf("multinode: member %s is still running", m.Spec.Name)
	}
	if err := m.start(); err != nil {
		return err
	}
	return m.waitReady(timeout)
}

// waitReady waits for a "ready" line written by the member's current process.
func (m *Member) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, st := range m.Statuses() {
			if st.Event == "ready" && !st.Time.Before(m.Proc.Started) {
				return nil
			}
		}
		if done, _ := m.Proc.Exited(); done {
			return fmt.Errorf("multinode: etcd member %s exited: %v\n%s", m.Spec.Name, m.Proc.Err(), m.Proc.Output(2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("multinode: etcd member %s not ready within %v\n%s", m.Spec.Name, timeout, m.Proc.Output(2000))
}

// Statuses are the status lines the member has written so far, in order.
func (m *Member) Statuses() []StatusLine {
	f, err := os.Open(m.log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []StatusLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var st StatusLine
		if json.Unmarshal(sc.Bytes(), &st) == nil && st.Event != "" {
			out = append(out, st)
		}
	}
	return out
}

// Last is the member's latest status line.
func (m *Member) Last() (StatusLine, bool) {
	s := m.Statuses()
	if len(s) == 0 {
		return StatusLine{}, false
	}
	return s[len(s)-1], true
}

// MemberEnv is the variable through which the harness hands an etcd member its
// MemberSpec (JSON) when it runs the test binary again as that member: TestMain calls
// RunMemberFromEnv first.
const MemberEnv = "LRTRAIN_MULTINODE_ETCD_MEMBER"

// Ports of every etcd member (each has its own address).
const (
	ClientPort = 2379
	PeerPort   = 2380
)

// MemberSpec is one member of the harness's etcd cluster.
type MemberSpec struct {
	Name    string
	Dir     string
	IP      string
	Cluster map[string]string // name → peer URL of every member
	TLS     etcdembed.TLSFiles
}

// StatusLine is what a member process writes to its log, as one JSON line, when it
// is ready and whenever its view of the raft leader or term changes (polled every
// 20 ms), so that the harness can time elections without talking to etcd itself.
type StatusLine struct {
	Event  string    `json:"event"` // "ready" or "status"
	Time   time.Time `json:"time"`
	Name   string    `json:"name"`
	ID     string    `json:"id"`
	Leader string    `json:"leader"` // "0" when the member knows no leader
	Term   uint64    `json:"term"`
}

// RunMemberFromEnv runs an etcd member when MemberEnv is set, until SIGTERM or
// SIGINT, and returns true with the exit code; without the variable it returns false
// at once.
func RunMemberFromEnv() (bool, int) {
	v, ok := os.LookupEnv(MemberEnv)
	if !ok {
		return false, 0
	}
	var spec MemberSpec
	if err := json.Unmarshal([]byte(v), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "etcd member: %s: %v\n", MemberEnv, err)
		return true, 2
	}
	if err := runMember(spec); err != nil {
		fmt.Fprintf(os.Stderr, "etcd member %s: %v\n", spec.Name, err)
		return true, 1
	}
	return true, 0
}

func runMember(spec MemberSpec) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	srv, err := etcdembed.Start(ctx, spec.Dir, etcdembed.WithName(spec.Name), etcdembed.WithHost(spec.IP),
		etcdembed.WithClientPort(ClientPort), etcdembed.WithPeerPort(PeerPort),
		etcdembed.WithInitialCluster(spec.Cluster), etcdembed.WithClientTLS(spec.TLS), etcdembed.WithPeerTLS(spec.TLS),
		etcdembed.WithReadyTimeout(time.Minute), etcdembed.WithLogLevel("error"))
	if err != nil {
		return err
	}
	defer srv.Close()
	enc := json.NewEncoder(os.Stdout)
	report := func(event string, st etcdembed.Status) {
		_ = enc.Encode(StatusLine{Event: event, Time: time.Now(), Name: spec.Name, ID: hexID(st.ID),
			Leader: hexID(st.Leader), Term: st.Term})
	}
	last := srv.Status()
	report("ready", last)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-srv.Err():
			return fmt.Errorf("server failed: %w", err)
		case <-tick.C:
			if st := srv.Status(); st != last {
				report("status", st)
				last = st
			}
		}
	}
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }
