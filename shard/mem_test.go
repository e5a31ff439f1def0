package shard_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
	"github.com/lrtrain/lrtrain/shard"
)

// TestShardedMemory runs evaluation forward passes in processes that hold the model
// whole (one process) or sharded over 2 and 3 ranks, and logs what they hold: peak
// RSS (VmHWM, which also counts the checkpoint pages a process touched while
// loading), anonymous RSS after loading and after the passes, the gatherer's
// accounting, and the time of a forward pass. The gatherer must hold the plan's share
// and at most one unit and the one gathered ahead (the default prefetch), and with the small preset the ranks' peak RSS must stay below
// the whole model's. It is a measurement, run as reported in doc.go:
//
//	LRTRAIN_SHARD_MEM_PRESET=small go test ./shard/ -run TestShardedMemory -v
func TestShardedMemory(t *testing.T) {
	preset := os.Getenv("LRTRAIN_SHARD_MEM_PRESET")
	if preset == "" {
		t.Skip("a measurement: set LRTRAIN_SHARD_MEM_PRESET=small (or tiny) to run it")
	}
	dir := writeModel(t, "llama", preset, "")
	env := []string{envDir + "=" + dir, envBatch + "=1", envSeq + "=128"}
	base := memRun(t, 0, env)
	t.Logf("%s llama, whole model, 1 process: %s", preset, base.line)
	tensors := frozenTensors(t, dir)
	for _, size := range []int{2, 3} {
		plan, err := shard.NewPlan(tensors, size, shard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		runs := runRanks(t, "mem", size, 5*time.Minute, env...)
		for _, r := range runs {
			if r.err != nil {
				t.Fatalf("rank %d: %v\n%s", r.rank, r.err, r.stderr)
			}
			m := parseMem(t, r.stdout)
			t.Logf("%s llama, %d ranks, rank %d: %s", preset, size, r.rank, m.line)
			acct := newAccounting(plan, false, shard.DefaultPrefetch)
			acct.forward()
			if m.shardB != plan.ShardBytes() || m.peakHeldB != acct.peakB {
				t.Errorf("rank %d holds %d bytes of shards and gathered at most %d; the plan says %d and %d",
					r.rank, m.shardB, m.peakHeldB, plan.ShardBytes(), acct.peakB)
			}
			if preset != "tiny" && m.hwmKB >= base.hwmKB {
				t.Errorf("rank %d of %d: peak RSS %d kB, the whole model's %d kB", r.rank, size, m.hwmKB, base.hwmKB)
			}
		}
		t.Logf("plan for %d ranks: %d bytes per rank of %d, largest unit %d bytes",
			size, plan.ShardBytes(), plan.TotalBytes(), plan.MaxUnitBytes())
	}
}

type memResult struct {
	line                     string
	hwmKB, shardB, peakHeldB int64
}

var memFields = regexp.MustCompile(`([a-zA-Z-]+)=(\d+)`)

func parseMem(t *testing.T, out string) memResult {
	t.Helper()
	r := memResult{line: out}
	for _, f := range memFields.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseInt(f[2], 10, 64)
		switch f[1] {
		case "VmHWM-kB":
			r.hwmKB = v
		case "shard-B":
			r.shardB = v
		case "peak-held-B":
			r.peakHeldB = v
		}
	}
	if r.hwmKB == 0 {
		t.Fatalf("no VmHWM in %q", out)
	}
	return r
}

// memRun runs the unsharded baseline child.
func memRun(t *testing.T, size int, env []string) memResult {
	t.Helper()
	cmd := childproc.Command(context.Background(), "mem", childEnv(append(env, envSize+"="+fmt.Sprint(size))...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("baseline: %v\n%s", err, out)
	}
	return parseMem(t, string(out))
}
