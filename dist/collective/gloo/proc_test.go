package gloo_test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCollectivesAcrossProcesses runs every collective between real
// processes on loopback and checks the results against references computed
// independently by each rank (see runSuite).
func TestCollectivesAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	for _, size := range []int{2, 3, 4} {
		t.Run(fmt.Sprintf("ranks=%d", size), func(t *testing.T) {
			kids := spawn(t, "suite", size, 10*time.Second, 40*time.Second)
			var maxEnter, minExit int64
			for _, c := range kids {
				if code := c.wait(t, 40*time.Second); code != exitOK {
					t.Fatalf("rank %d exited with %d:\n%s", c.rank, code, c.errText())
				}
				var enter, exit int64
				line := c.waitLine(t, "barrier ", time.Second)
				if _, err := fmt.Sscanf(line, "barrier %d %d", &enter, &exit); err != nil {
					t.Fatalf("rank %d: %q: %v", c.rank, line, err)
				}
				maxEnter = max(maxEnter, enter)
				if minExit == 0 || exit < minExit {
					minExit = exit
				}
			}
			if minExit < maxEnter {
				t.Errorf("a rank left the barrier %s before the last one entered", time.Duration(maxEnter-minExit))
			}
		})
	}
}

// TestKilledRankFailsSurvivors SIGKILLs one of four ranks while they
// all-reduce in a loop: every survivor's collective must fail within the
// timeout with an error naming the op, its rank and the timeout, and the
// survivors must exit.
func TestKilledRankFailsSurvivors(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	const timeout = 3 * time.Second
	kids := spawn(t, "loop", 4, timeout, 30*time.Second)
	for _, c := range kids {
		c.waitLine(t, "ready", 15*time.Second)
	}
	victim := kids[1]
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for _, c := range kids {
		if c == victim {
			continue
		}
		code := c.wait(t, timeout+2*time.Second)
		line := c.waitLine(t, "ERR ", time.Second)
		took := c.exitAt.Sub(killed)
		t.Logf("rank %d exited %s after the kill: %s", c.rank, took.Round(time.Millisecond), line)
		if code != exitFailed {
			t.Errorf("rank %d exited with %d, want %d; stderr:\n%s", c.rank, code, exitFailed, c.errText())
		}
		if took > timeout+time.Second {
			t.Errorf("rank %d took %s to fail, timeout is %s", c.rank, took, timeout)
		}
		for _, want := range []string{"allreduce(sum)", fmt.Sprintf("rank %d of 4", c.rank), "timeout 3s"} {
			if !strings.Contains(line, want) {
				t.Errorf("rank %d's error %q does not name %q", c.rank, line, want)
			}
		}
		if strings.Contains(c.allLines(), "ERR later call") {
			t.Errorf("rank %d: a call after the failure did not fail with ErrBroken:\n%s", c.rank, c.allLines())
		}
	}
}

// TestHungRankTimesOut stops one of three ranks (SIGSTOP: its sockets stay
// open, so only the timeout can notice): the survivors must fail within
// the timeout, at least one of them with ErrTimeout.
func TestHungRankTimesOut(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	const timeout = 2 * time.Second
	kids := spawn(t, "loop", 3, timeout, 30*time.Second)
	for _, c := range kids {
		c.waitLine(t, "ready", 15*time.Second)
	}
	victim := kids[2]
	if err := victim.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	timeouts := 0
	for _, c := range kids[:2] {
		code := c.wait(t, timeout+3*time.Second)
		line := c.waitLine(t, "ERR ", time.Second)
		t.Logf("rank %d exited %s after the stop: %s", c.rank, c.exitAt.Sub(stopped).Round(time.Millisecond), line)
		if code != exitFailed {
			t.Errorf("rank %d exited with %d, want %d; stderr:\n%s", c.rank, code, exitFailed, c.errText())
		}
		if took := c.exitAt.Sub(stopped); took > timeout+2*time.Second {
			t.Errorf("rank %d took %s to fail, timeout is %s", c.rank, took, timeout)
		}
		if strings.HasPrefix(line, "ERR timeout") {
			timeouts++
		}
	}
	if timeouts == 0 {
		t.Errorf("no survivor reported a timeout")
	}
}

func (c *child) allLines() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}
