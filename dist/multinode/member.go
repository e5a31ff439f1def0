package multinode

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
)

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
