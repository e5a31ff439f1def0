package shard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/shard"
)

// The process tests re-execute this test binary as the ranks of a shard group
// (package childproc: roles whole, mem and workload): TestMain runs runChild and exits. A child forms a Gloo group of
// LRT_SHARD_SIZE ranks on loopback through the store at LRT_SHARD_STORE, loads the
// model in LRT_SHARD_DIR sharded, and writes its results to LRT_SHARD_OUT/<rank>.bin.
const (
	envRank  = "LRT_SHARD_RANK"
	envSize  = "LRT_SHARD_SIZE"
	envStore = "LRT_SHARD_STORE"
	envDir   = "LRT_SHARD_DIR"
	envOut   = "LRT_SHARD_OUT"
	envDType = "LRT_SHARD_DTYPE" // compute dtype: float32 (default) or bfloat16
	envBatch = "LRT_SHARD_BATCH" // role mem: batch × seq of the forward
	envSeq   = "LRT_SHARD_SEQ"
	// envPrefetch is the gatherer's prefetch depth (SetPrefetch); unset: the default.
	envPrefetch = "LRT_SHARD_PREFETCH"
	// envNoPeer names the ranks that set shard.EnvPeerReads=0 before loading: "all",
	// one rank's number, or "" (none: each sets it to 1)
	envNoPeer = "LRT_SHARD_NO_PEER"
)

func runChild(role string) int {
	rank, _ := strconv.Atoi(os.Getenv(envRank))
	size, _ := strconv.Atoi(os.Getenv(envSize))
	ctx := context.Background()
	var opts []model.Option
	if os.Getenv(envDType) == "bfloat16" {
		opts = append(opts, model.WithDType(gotch.BFloat16))
	}
	if role == "whole" { // the unsharded reference of the workload
		return wholeChild(os.Getenv(envDir), os.Getenv(envOut), opts)
	}
	if size == 0 { // role mem: the unsharded baseline
		return memChild(nil, nil, 0, os.Getenv(envDir), opts)
	}
	store, err := collective.DialStore(ctx, os.Getenv(envStore), 20*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	g, err := gloo.New(ctx, collective.Config{Rank: rank, Size: size, Store: store,
		Hostname: "127.0.0.1", Timeout: 30 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer g.Close()
	peer := "1"
	if np := os.Getenv(envNoPeer); np == "all" || np == strconv.Itoa(rank) {
		peer = "0"
	}
	os.Setenv(shard.EnvPeerReads, peer)
	loadStart := time.Now()
	m, gat, err := shard.Load(ctx, g, os.Getenv(envDir), opts...)
	loaded := time.Since(loadStart)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", rank, err)
		return 1
	}
	defer gat.Close()
	defer m.Close()
	if d := os.Getenv(envPrefetch); d != "" {
		n, _ := strconv.Atoi(d)
		if err := gat.SetPrefetch(n); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	switch role {
	case "mem":
		return memChild(m, gat, loaded, "", nil)
	case "abort":
		return abortChild(m, gat, g, rank)
	case "rows":
		return rowsChild(m, gat, rank)
	}
	var atLoss int64
	v, err := workload(m, 2, 6, func() { atLoss = gat.Stats().BufferBytes })
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", rank, err)
		return 1
	}
	serving, path := serveGoroutines(), gat.GatherPath()
	m.Close()
	gat.Close()
	fmt.Printf("collective goroutines: %d during the run, %d after Close\n", serving, serveGoroutines())
	fmt.Printf("gather: %s\n", path)
	if err := writeFloats(filepath.Join(os.Getenv(envOut), fmt.Sprintf("%d.bin", rank)), v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("buffer-bound-B=%d\n", gat.BufferBound())
	fmt.Printf("buffers-B at the loss=%d\n", atLoss)
	st := gat.Stats()
	fmt.Printf("shard-B=%d peak-held-B=%d held-B=%d peak-buffers-B=%d gathers=%d reused=%d\n",
		st.ShardBytes, st.PeakHeldBytes, st.HeldBytes, st.PeakBufferBytes, st.Gathers, st.Reused)
	return 0
}

// wholeChild runs the workload on the model in dir loaded whole and writes its
// result to out/whole.bin.
func wholeChild(dir, out string, opts []model.Option) int {
	m, err := model.Load(dir, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer m.Close()
	v, err := workload(m, 2, 6, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := writeFloats(filepath.Join(out, "whole.bin"), v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// memChild runs one evaluation Forward of LRT_SHARD_BATCH × LRT_SHARD_SEQ tokens (on
// m, or on the model in dir loaded whole) and prints the process's peak RSS, the
// gatherer's accounting and the time of the forward.
func memChild(m *model.Model, gat *shard.Gatherer, loaded time.Duration, dir string, opts []model.Option) int {
	runtime.LockOSThread()
	if m == nil {
		loadStart := time.Now()
		var err error
		if m, err = model.Load(dir, opts...); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer m.Close()
		loaded = time.Since(loadStart)
	}
	batch, _ := strconv.Atoi(os.Getenv(envBatch))
	seq, _ := strconv.Atoi(os.Getenv(envSeq))
	ids := make([]int64, batch*seq)
	for i := range ids {
		ids[i] = int64(i*7919+13) % int64(m.Config().VocabSize)
	}
	in, err := model.Int64Tensor(ids, int64(batch), int64(seq))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer in.Drop()
	ts.GradSetEnabled(false)
	anonLoaded := procField("RssAnon:")
	var best time.Duration
	for range 3 {
		start := time.Now()
		logits, err := m.Forward(model.Inputs{InputIDs: in})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		logits.Drop()
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	fmt.Printf("VmHWM-kB=%d RssAnon-loaded-kB=%d RssAnon-after-kB=%d forward-ms=%d load-ms=%d\n",
		procField("VmHWM:"), anonLoaded, procField("RssAnon:"), best.Milliseconds(), loaded.Milliseconds())
	if gat != nil {
		st := gat.Stats()
		fmt.Printf("shard-B=%d peak-held-B=%d peak-buffers-B=%d gathers=%d gather-ms=%d\n",
			st.ShardBytes, st.PeakHeldBytes, st.PeakBufferBytes, st.Gathers, st.GatherTime.Milliseconds())
	}
	return 0
}

// procField reads a kB field of /proc/self/status.
func procField(key string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(strings.TrimPrefix(line, key))
			if len(f) > 0 {
				v, _ := strconv.ParseInt(f[0], 10, 64)
				return v
			}
		}
	}
	return -1
}
