package train

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
	"github.com/lrtrain/lrtrain/phiop"
	"github.com/lrtrain/lrtrain/safetensors"
	"github.com/lrtrain/lrtrain/shard"
)

// distOptions is a float64 run of 4 steps over global batches of 4 examples:
// micro-batches of `micro` examples, 2 accumulation steps, on `world` ranks.
func distOptions(t *testing.T, micro int) Options {
	o := tinyOptions(t, t.TempDir())
	o.Model.DType = "float64"
	o.Train.MaxSteps, o.Train.MicroBatchSize, o.Train.GradAccumSteps = 4, micro, 2
	o.Checkpoint.Every = 2
	return o
}

// Two data-parallel ranks (Gloo over loopback, one process each) train exactly what one
// process trains on the same global batches: the same per-step losses and gradient
// norms, and the same final adapters, up to float64 rounding (the ranks sum their
// gradients in another order). Only rank 0 writes metrics and checkpoints. The gradients
// take the flat path, once per step (the child counts): concatenated into one tensor and
// reduced in place by the group's raw all-reduce (Gloo's on host memory, on a GPU NCCL's
// on device memory), then split back.
func TestTwoRanksTrainLikeOne(t *testing.T) { checkTwoRanksLikeOne(t, envFlat+"=1") }

// The same through the float64 host bucket, the path of a group without a raw
// all-reduce.
func TestTwoRanksHostGradientsTrainLikeOne(t *testing.T) { checkTwoRanksLikeOne(t, envHost+"=1") }

func checkTwoRanksLikeOne(t *testing.T, extra ...string) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	one := distOptions(t, 2)
	if _, err := Run(context.Background(), one, Env{Console: io.Discard}); err != nil {
		t.Fatal(err)
	}

	two := distOptions(t, 1)
	runTwoRanks(t, two, extra...)
	compareTwoWithOne(t, one, two)
}

// compareTwoWithOne checks that the 2-rank run two trained what the 1-process run one
// did (see TestTwoRanksTrainLikeOne).
func compareTwoWithOne(t *testing.T, one, two Options) {
	t.Helper()
	want, _ := metricsOf(t, one.Output.Dir)
	got, _ := metricsOf(t, two.Output.Dir)
	if len(got) != len(want) {
		t.Fatalf("%d step records with 2 ranks, %d with 1 (only rank 0 writes)", len(got), len(want))
	}
	for i := range want {
		for _, k := range []string{"loss", "grad_norm"} {
			w, g := want[i][k].(float64), got[i][k].(float64)
			if math.Abs(w-g) > 1e-10*math.Abs(w) {
				t.Errorf("step %d %s: %.15g with 2 ranks, %.15g with 1", i+1, k, g, w)
			}
		}
		if want[i]["tokens"] != got[i]["tokens"] || want[i]["targets"] != got[i]["targets"] {
			t.Errorf("step %d: tokens/targets %v/%v with 2 ranks, %v/%v with 1",
				i+1, got[i]["tokens"], got[i]["targets"], want[i]["tokens"], want[i]["targets"])
		}
	}
	a := readAdapters(t, one)
	b := readAdapters(t, two)
	var maxDiff, maxAbs float64
	for name, w := range a {
		g, ok := b[name]
		if !ok || len(g) != len(w) {
			t.Fatalf("%s missing or reshaped with 2 ranks", name)
		}
		for i := range w {
			maxDiff = max(maxDiff, math.Abs(w[i]-g[i]))
			maxAbs = max(maxAbs, math.Abs(w[i]))
		}
	}
	t.Logf("final adapters: max |difference| %.3g (max |value| %.3g)", maxDiff, maxAbs)
	if maxDiff > 1e-9*maxAbs {
		t.Errorf("final adapters differ by up to %.3g", maxDiff)
	}
	s, err := OpenCheckpoint(filepath.Join(two.Output.Dir, "checkpoints", checkpoint.DirName(4)))
	if err != nil {
		t.Fatal(err)
	}
	if s.Manifest.WorldSize != 2 || s.State.WorldSize != 2 || s.State.Cursor.Position != 16 {
		t.Errorf("2-rank checkpoint: manifest world size %d, state %+v", s.Manifest.WorldSize, s.State)
	}
}

// readAdapters reads the final adapter file of a run.
func readAdapters(t *testing.T, o Options) map[string][]float64 {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(o.Output.Dir, "checkpoints", checkpoint.DirName(int64(o.Train.MaxSteps)), AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float64{}
	for _, n := range f.Names() {
		if out[n], err = f.Float64s(n); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Two ranks with the frozen backbone sharded across them (each holds half of it and
// all-gathers every block around its use) train bit for bit what two ranks with the
// whole backbone train: the same losses, gradient norms and evaluation losses (the
// evaluation set's 5 micro-batches split 3/2, so the ranks run in lockstep), and the
// same final adapters. Both form ΔW per micro-batch (model.delta_per_step off): a
// sharded backbone always does, and holding ΔW for the step sums the micro-batches'
// gradients in another order (TestDeltaPerStepRunsPhiOncePerStep compares the two).
func TestShardedBackboneTrainsLikeWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	var five []map[string]any // 5 evaluation examples: 5 micro-batches, 3 on rank 0 and 2 on rank 1
	raw, err := os.ReadFile(testdata("alpaca_tiny_eval.json"))
	if err == nil {
		err = json.Unmarshal(raw, &five)
	}
	if err == nil {
		raw, err = json.Marshal(five[:5])
	}
	evalFile := filepath.Join(t.TempDir(), "eval5.json")
	if err == nil {
		err = os.WriteFile(evalFile, raw, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, extra ...string) Options {
		o := distOptions(t, 1)
		o.Data.Eval = []string{evalFile}
		o.Train.EvalEvery = 2
		o.Model.DeltaPerStep = false
		runTwoRanks(t, o, extra...)
		return o
	}
	// Sharded ranks on one host read each other's shards; with peer reads off they
	// all-gather them. Both must train as the whole backbone does.
	whole := run(t)
	for _, c := range []struct{ env, path string }{
		{shard.EnvPeerReads + "=1", "peer reads"},
		{shard.EnvPeerReads + "=0", "all-gather (no peer reads: " + shard.EnvPeerReads + "=0)"},
	} {
		t.Run(c.env, func(t *testing.T) {
			sharded := run(t, envShard+"=1", c.env)
			logs, err := os.ReadFile(filepath.Join(sharded.Output.Dir, "train.log"))
			if err != nil || !strings.Contains(string(logs), "frozen backbone sharded") {
				t.Fatalf("the sharded run's log does not say the backbone was sharded (%v)", err)
			}
			if want := `"shard_gather":"` + c.path + `"`; !strings.Contains(string(logs), want) {
				t.Errorf("the sharded run's log does not say %s", want)
			}
			// With peer reads a training pass reads the vocabulary matrices by rows
			// (the embeddings of its ids, the head's a chunk at a time) instead of
			// gathering them; all-gathering ranks gather them whole.
			reads := regexp.MustCompile(`"shard_row_reads":(\d+)`).FindStringSubmatch(string(logs))
			if reads == nil || (reads[1] != "0") != (c.path == "peer reads") {
				t.Errorf("%s: the log's shard_row_reads is %v", c.path, reads)
			}
			checkCacheRoom(t, logs)
			sameTraining(t, whole, sharded)
		})
	}
}

// sameTraining fails unless the runs logged the same losses, gradient norms and
// evaluations and saved the same adapters, bit for bit.
func sameTraining(t *testing.T, whole, sharded Options) {
	t.Helper()
	ws, we := metricsOf(t, whole.Output.Dir)
	ss, se := metricsOf(t, sharded.Output.Dir)
	if len(ws) != len(ss) || len(we) != len(se) || len(we) == 0 {
		t.Fatalf("records: %d steps / %d evals whole, %d / %d sharded", len(ws), len(we), len(ss), len(se))
	}
	for i := range ws {
		for _, k := range []string{"loss", "grad_norm"} {
			if ws[i][k] != ss[i][k] {
				t.Errorf("step %d %s: %v sharded, %v whole", i+1, k, ss[i][k], ws[i][k])
			}
		}
	}
	for i := range we {
		if we[i]["eval_loss"] != se[i]["eval_loss"] || we[i]["eval_targets"] != se[i]["eval_targets"] {
			t.Errorf("evaluation %d: %v/%v sharded, %v/%v whole", i, se[i]["eval_loss"], se[i]["eval_targets"],
				we[i]["eval_loss"], we[i]["eval_targets"])
		}
	}
	a, b := readAdapters(t, whole), readAdapters(t, sharded)
	for name, w := range a {
		if !slices.Equal(w, b[name]) {
			t.Errorf("%s differs between the sharded and the whole backbone", name)
		}
	}
}

// checkCacheRoom checks that a sharded CPU run raised the CPU block cache's bound from
// its default by room for the gather buffers: prefetch depth + 2 of the largest unit
// (the one in use, those ahead, the kept one; the tiny llama's head has its own
// weights).
func checkCacheRoom(t *testing.T, logs []byte) {
	t.Helper()
	if v := os.Getenv(phiop.CacheEnv); v != "" {
		t.Fatalf("%s=%s is set: the default bound is not what the run starts from", phiop.CacheEnv, v)
	}
	for _, line := range strings.Split(string(logs), "\n") {
		if !strings.Contains(line, "frozen backbone sharded") {
			continue
		}
		var rec struct {
			Largest  int64   `json:"largest_unit_bytes"`
			Prefetch int64   `json:"shard_prefetch"`
			Cache    float64 `json:"cpu_cache_mib"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		want := mib(phiop.DefaultCacheLimit() + (rec.Prefetch+2)*rec.Largest)
		if rec.Largest == 0 || rec.Cache != want {
			t.Errorf("cpu_cache_mib %v with a largest unit of %d bytes at prefetch %d, want %v", rec.Cache, rec.Largest, rec.Prefetch, want)
		}
		return
	}
	t.Error("no \"frozen backbone sharded\" line")
}

// With model.recompute_delta (and no activation checkpointing) a sharded backbone keeps
// every block's graph and gathers the block's weights again in backward instead of
// recomputing the block (model.SetRegather): the same arithmetic as the whole backbone
// with recompute_delta, so the same losses, gradient norms and adapters, bit for bit.
func TestShardedRegatherTrainsLikeWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	run := func(extra ...string) Options {
		o := distOptions(t, 1)
		o.Model.RecomputeDelta = true
		runTwoRanks(t, o, extra...)
		return o
	}
	whole, sharded := run(), run(envShard+"=1")
	logs, err := os.ReadFile(filepath.Join(sharded.Output.Dir, "train.log"))
	if err != nil || !strings.Contains(string(logs), `"sharded_backward":"regather"`) {
		t.Fatalf("the sharded run's log does not say its backward regathers the blocks (%v)", err)
	}
	ws, _ := metricsOf(t, whole.Output.Dir)
	ss, _ := metricsOf(t, sharded.Output.Dir)
	if len(ws) != len(ss) || len(ws) == 0 {
		t.Fatalf("records: %d steps whole, %d sharded", len(ws), len(ss))
	}
	for i := range ws {
		for _, k := range []string{"loss", "grad_norm"} {
			if ws[i][k] != ss[i][k] {
				t.Errorf("step %d %s: %v sharded, %v whole", i+1, k, ss[i][k], ws[i][k])
			}
		}
	}
	a, b := readAdapters(t, whole), readAdapters(t, sharded)
	for name, w := range a {
		if !slices.Equal(w, b[name]) {
			t.Errorf("%s differs between the sharded and the whole backbone", name)
		}
	}
}

// A rank of a sharded backbone killed as step 3 starts stops the other: rank 0's
// next gather (a read of rank 1's shards, or an all-gather with it) or its gradient
// all-reduce finds rank 1 gone, and rank 0 fails naming the lost peer, after saving
// step 2, the last completed step, which is intact.
func TestShardedDeadRankStopsTheOther(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	for _, peer := range []string{"1", "0"} {
		t.Run(shard.EnvPeerReads+"="+peer, func(t *testing.T) {
			o := distOptions(t, 1)
			o.Checkpoint.Every = 0 // nothing saved before the failure: rank 0 saves step 2 then
			deadRankRun(t, o, envDieStep+"=3", []string{"collective: peer lost"}, envShard+"=1", shard.EnvPeerReads+"="+peer)
		})
	}
}

// deadRankRun trains o on two ranks (extra in both environments) of which rank 1
// dies as die says, some time in step 3, and checks that rank 0 fails at step 3 with
// an error that says each of want, after saving step 2 intact.
func deadRankRun(t *testing.T, o Options, die string, want []string, extra ...string) {
	t.Helper()
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var stderr0 bytes.Buffer
	var ranks []*exec.Cmd
	for r := range 2 {
		env := append([]string{envStore + "=" + srv.Addr(), envRank + "=" + strconv.Itoa(r), envSize + "=2"}, extra...)
		if r == 1 {
			env = append(env, die)
		}
		cmd := childCommand(t, o, env...)
		if r == 0 {
			cmd.Stderr = io.MultiWriter(&stderr0, cmd.Stderr)
		}
		childproc.Start(t, cmd)
		ranks = append(ranks, cmd)
	}
	err0, err1 := ranks[0].Wait(), ranks[1].Wait()
	if err1 == nil || !strings.Contains(err1.Error(), "killed") {
		t.Fatalf("rank 1: %v, want it killed", err1)
	}
	if err0 == nil {
		t.Fatal("rank 0 finished although rank 1 died")
	}
	msg := stderr0.String()
	t.Logf("rank 0: %s", lastLines(msg, 1))
	for _, w := range append([]string{"child: train: step 3: ", "(step 2 saved in "}, want...) {
		if !strings.Contains(msg, w) {
			t.Errorf("rank 0's error does not contain %q:\n%s", w, lastLines(msg, 5))
		}
	}
	s, err := OpenCheckpoint(filepath.Join(o.Output.Dir, "checkpoints", checkpoint.DirName(2)))
	if err != nil {
		t.Fatal(err)
	}
	if s.State.Step != 2 {
		t.Errorf("saved checkpoint holds step %d, want 2", s.State.Step)
	}
}

// runTwoRanks trains o on two child processes in a Gloo group over a fresh store (extra
// is more environment for both) and fails the test unless both exit 0.
func runTwoRanks(t *testing.T, o Options, extra ...string) {
	t.Helper()
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var ranks []*exec.Cmd
	for r := range 2 {
		env := append([]string{envStore + "=" + srv.Addr(), envRank + "=" + strconv.Itoa(r), envSize + "=2"}, extra...)
		ranks = append(ranks, startChild(t, o, env...))
	}
	for r, c := range ranks {
		if err := c.Wait(); err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
}
