package shard_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/shard"
)

// childEnv is what every child of these tests, the ranks and the whole-model
// reference alike, gets on top of this process's own environment (which childproc
// passes on, so the same OPENBLAS_* kernel settings): extra, and one intra-op thread
// each, since up to 3 ranks share the cores and a result is bit-exact only between
// processes that split the work alike.
func childEnv(extra ...string) []string {
	return append(append([]string(nil), extra...), "OMP_NUM_THREADS=1")
}

// wholeInChild runs the workload on the model in dir loaded whole (compute "" or
// "bfloat16"), in a child with childEnv, and returns its result.
func wholeInChild(t *testing.T, dir, compute string) []float32 {
	t.Helper()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := childproc.Command(ctx, "whole", childEnv(envDir+"="+dir, envOut+"="+out, envDType+"="+compute)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("whole-model reference: %v\n%s", err, b)
	}
	v, err := readFloats(filepath.Join(out, "whole.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rankRun is one finished child.
type rankRun struct {
	rank   int
	stdout string
	stderr string
	err    error
}

// runRanks runs size children of role on loopback, connected through a store served
// here, with extra environment, and waits for all of them (killing them after limit).
func runRanks(t *testing.T, role string, size int, limit time.Duration, env ...string) []rankRun {
	t.Helper()
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	runs := make([]rankRun, size)
	done := make(chan int, size)
	for r := range size {
		cmd := childproc.Command(ctx, role, childEnv(append(env, envRank+"="+strconv.Itoa(r),
			envSize+"="+strconv.Itoa(size), envStore+"="+srv.Addr())...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			err := cmd.Wait()
			runs[r] = rankRun{rank: r, stdout: out.String(), stderr: errb.String(), err: err}
			done <- r
		}()
	}
	for range size {
		<-done
	}
	return runs
}

// Every rank of a Gloo group of real processes loads only its shards, gathers each
// block for the forward pass and again for the recomputation in a checkpointed
// backward, and must produce the unsharded model's logits, loss and adapter
// gradients bit for bit. Bit for bit holds because the reference runs the same
// binary in a child process with the very environment of the ranks (childEnv: the
// same OpenBLAS kernel settings, one intra-op thread): the matmuls then have the
// same shapes, kernels and thread split on both sides. Computed here instead, with
// the test's own thread count, Haswell's sgemm splits the work differently and the
// last bits differ (-0.16438073 vs -0.16438068 with 2 threads, measured).
func TestShardedRanksMatchTheWholeModel(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	for _, c := range []struct {
		arch, diskDType, compute string
		ranks                    []int
		depths                   []int // prefetch depths (SetPrefetch)
		// noPeer: the ranks with EnvPeerReads=0 ("all": every rank; "1": rank 1 alone,
		// which makes the whole group all-gather); "": they read each other's shards
		noPeer string
	}{
		{"llama", "", "", []int{2, 3}, []int{0, 1, 2}, ""},
		{"llama", "", "", []int{2, 3}, []int{0, 1}, "all"},
		{"llama", "", "", []int{3}, []int{1}, "1"},
		{"qwen2", "", "", []int{2}, []int{1, 2}, ""}, // tied embeddings: the head gathers them again
		{"roberta", "", "", []int{3}, []int{1}, ""},
		{"llama", "", "bfloat16", []int{3}, []int{1}, ""}, // bfloat16 buffers travel as float32 words
		{"llama", "", "bfloat16", []int{3}, []int{1}, "all"},
	} {
		dir := writeModel(t, c.arch, "tiny", c.diskDType)
		want := wholeInChild(t, dir, c.compute)
		cfg, err := model.ReadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		tensors, err := shard.FrozenTensors(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range c.ranks {
			for _, depth := range c.depths {
				elem := 4
				if c.compute == "bfloat16" {
					elem = 2
				}
				plan, err := shard.NewPlan(tensors, size, shard.Options{ElemSize: elem})
				if err != nil {
					t.Fatal(err)
				}
				tied := cfg.TieWordEmbeddings && c.arch != "roberta"
				acct := expectedStats(plan, tied, depth)
				atLoss := fmt.Sprintf("buffers-B at the loss=%d", headBytes(plan, tied))
				bound := fmt.Sprintf("buffer-bound-B=%d", bufferBound(plan, tied, depth))
				name := fmt.Sprintf("%s/disk=%s/compute=%s/ranks=%d/prefetch=%d/no-peer-reads=%s", c.arch, or(c.diskDType, "float32"), or(c.compute, "float32"), size, depth, or(c.noPeer, "none"))
				t.Run(name, func(t *testing.T) {
					out := t.TempDir()
					runs := runRanks(t, "workload", size, 60*time.Second, envDir+"="+dir, envOut+"="+out,
						envDType+"="+c.compute, envPrefetch+"="+strconv.Itoa(depth), envNoPeer+"="+c.noPeer)
					for _, r := range runs {
						checkRankOutput(t, r, out, want)
						lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
						if st := lines[len(lines)-1]; st != acct {
							t.Errorf("rank %d: %s, want %s", r.rank, st, acct)
						}
						if l := lines[len(lines)-2]; l != atLoss {
							t.Errorf("rank %d: %s, want %s", r.rank, l, atLoss)
						}
						if l := lines[len(lines)-3]; l != bound {
							t.Errorf("rank %d: %s, want %s", r.rank, l, bound)
						}
						serving := 0
						if depth > 0 {
							serving = 1
						}
						if want := fmt.Sprintf("collective goroutines: %d during the run, 0 after Close", serving); lines[0] != want {
							t.Errorf("rank %d: %s, want %s", r.rank, lines[0], want)
						}
						if want := "gather: " + gatherPath(c.noPeer, r.rank); lines[1] != want {
							t.Errorf("rank %d: %s, want %s", r.rank, lines[1], want)
						}
					}
				})
			}
		}
	}
}

// gatherPath is what Gatherer.GatherPath must say on rank where the ranks noPeer
// (TestShardedRanksMatchTheWholeModel) have peer reads off.
func gatherPath(noPeer string, rank int) string {
	switch {
	case noPeer == "":
		return "peer reads"
	case noPeer == "all" || noPeer == strconv.Itoa(rank):
		return "all-gather (no peer reads: " + shard.EnvPeerReads + "=0)"
	}
	return "all-gather (no peer reads: rank " + noPeer + " takes no part)"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// headBytes is what the head's Before leaves allocated, whatever the prefetch depth:
// the head's unit (and the embeddings' when they are tied), nothing gathered ahead
// and no kept buffer, since backward's schedule comes after the head's backward. A head
// with no frozen tensors (RoBERTa's classification head is trainable, replicated)
// has no unit.
func headBytes(p *shard.Plan, tied bool) int64 {
	var n int64
	if h, ok := p.Unit(p.Blocks); ok {
		n = p.BufferLen(h)
	}
	if tied {
		e, _ := p.Unit(shard.Embeddings)
		n += p.BufferLen(e)
	}
	return n * int64(p.ElemSize)
}

// replayWorkload replays the calls the workload's two passes make (an evaluation
// Forward, then a checkpointed training pass) on an accounting for p.
func replayWorkload(p *shard.Plan, tied bool, depth int) *accounting {
	a := newAccounting(p, tied, depth)
	a.forward()
	a.checkpointed()
	return a
}

// bufferBound is what Gatherer.BufferBound must say: depth + 2 of the largest unit,
// one more with tied embeddings; it must also bound the replay's peak of buffer
// bytes (-1 if it does not, which no rank prints).
func bufferBound(p *shard.Plan, tied bool, depth int) int64 {
	n := int64(depth + 2)
	if tied {
		n++
	}
	a := replayWorkload(p, tied, depth)
	if a.peakBf > n*p.MaxUnitBytes() {
		return -1
	}
	return n * p.MaxUnitBytes()
}

// expectedStats is what a rank's gatherer must report after the workload: its share
// of the plan; at depth 0 at most one unit gathered at a time (the head and the
// embeddings together when they are tied), with prefetching that plus the units
// requested ahead, as the accounting replay of the workload's calls counts them;
// buffer bytes (Plan.BufferLen) at their peak: at depth 0 those of the largest unit,
// or of the head's and the embeddings' together (a request frees the kept buffer
// before allocating its own), with prefetching the replay's count;
// nothing held at the end; and one all-gather per unit for the evaluation pass, again
// for the checkpointed forward pass, and once per block for the recomputation in
// backward (prefetching adds none), less the units served from the kept buffer of
// the unit released last: with tied embeddings, the embeddings the head released,
// which the next pass starts with, and, at depth 2 or more on these 2-block models,
// the embeddings again for the evaluation pass's head, requested while block 0 runs
// and the embeddings' buffer is still kept (a training pass does not schedule its
// head). The last block, which backward asks for after the head, is never reused:
// the head's Before freed it.
func expectedStats(p *shard.Plan, tied bool, depth int) string {
	es := int64(p.ElemSize)
	peak, peakBuf := p.MaxUnitBytes(), p.MaxUnitBytes() // the longest unit's buffer is its own length
	perPass := len(p.Units)
	if tied {
		e, _ := p.Unit(shard.Embeddings)
		h, _ := p.Unit(p.Blocks)
		peak = max(peak, (p.Units[e].Len+p.Units[h].Len)*es)
		peakBuf = max(peakBuf, (p.BufferLen(e)+p.BufferLen(h))*es)
		perPass++
	}
	a := replayWorkload(p, tied, depth)
	if depth == 0 && (a.peakB != peak || a.peakBf != peakBuf) {
		// the replay must agree with the direct count where there is one
		return fmt.Sprintf("replay: peak %d buffers %d, direct count: %d %d", a.peakB, a.peakBf, peak, peakBuf)
	}
	reused := 0
	if tied {
		reused++ // the embeddings the head released, which the next pass starts with
	}
	if tied && depth >= 2 && p.Blocks == 2 {
		reused++ // the evaluation head's embeddings, kept since that pass released them
	}
	if a.gathers+a.reused != 2*perPass+p.Blocks || a.reused != reused {
		return fmt.Sprintf("replay: %d gathers + %d reused, direct count %d + %d", a.gathers, a.reused, 2*perPass+p.Blocks-reused, reused)
	}
	return fmt.Sprintf("shard-B=%d peak-held-B=%d held-B=0 peak-buffers-B=%d gathers=%d reused=%d",
		p.ShardBytes(), a.peakB, a.peakBf, a.gathers, a.reused)
}
