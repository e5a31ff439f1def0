package rdzv

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
)

// minTTL is the smallest --rdzv-ttl lrtrain supports (README, WithTTL).
const minTTL = 3 * time.Second

// loadMachine keeps every core busy until the test ends: two shell busy loops per core
// (other processes, as libtorch's threads in the workers are) and, in this process,
// goroutines that spin and allocate (Go work and garbage collection beside the
// keepalives, as a worker's tokenizer and data loading are).
func loadMachine(t *testing.T) {
	t.Helper()
	for range 2 * runtime.NumCPU() {
		c := exec.Command("sh", "-c", "while :; do :; done")
		// Killed with this process too: a test binary stopped by go test's timeout (or by
		// hand) must not leave busy loops running on the machine.
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	var sink atomic.Int64
	for range runtime.NumCPU() {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				b := make([]byte, 64<<10)
				sink.Add(int64(len(b)))
			}
		}()
	}
}

// Sessions with the smallest supported TTL keep their leases while every core is busy:
// each one gets 20 keepalive answers (about 10 s at one keepalive per TTL/6) and none is
// declared lost meanwhile.
func TestSessionsSurviveALoadedMachine(t *testing.T) {
	srv := startEtcd(t)
	loadMachine(t)
	const sessions, answers = 4, 20
	var list []*session
	for i := range sessions {
		cfg, err := newConfig([]Option{WithEndpoints(srv.Endpoint()), WithTTL(minTTL), WithLogger(zap.NewNop())})
		if err != nil {
			t.Fatal(err)
		}
		c, err := dial(context.Background(), "load", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.cli.Close() })
		s, err := c.newSession(context.Background())
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		t.Cleanup(s.Orphan)
		list = append(list, s)
	}
	begin := time.Now()
	guard := time.After(3 * time.Minute) // a broken keepalive must not hang the suite
	for i, s := range list {
		for s.answers.Load() < answers {
			select {
			case <-s.Done():
				t.Fatalf("session %d lost after %d answers, %v into the test: %v",
					i, s.answers.Load(), time.Since(begin).Round(time.Millisecond), contextCause(s))
			case <-guard:
				t.Fatalf("session %d: %d answers in 3 minutes", i, s.answers.Load())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	for i, s := range list {
		select {
		case <-s.Done():
			t.Errorf("session %d lost: %v", i, contextCause(s))
		default:
		}
	}
	t.Logf("%d sessions, TTL %v, %d answers each in %v under load", sessions, minTTL, answers, time.Since(begin).Round(time.Millisecond))
}

func contextCause(s *session) string { return fmt.Sprint(context.Cause(s.Ctx())) }
