package gloo_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
)

// shmGroups forms size ranks in this process on shared memory up to limit
// bytes, with their files in a directory of the test's own (returned).
func shmGroups(t *testing.T, size int, limit int64) ([]*gloo.Group, string) {
	t.Helper()
	dir := t.TempDir()
	gloo.SetShmDir(dir)
	t.Cleanup(func() { gloo.SetShmDir("/dev/shm") })
	gs := groups(t, size, 30*time.Second, func(_ int, c *collective.Config) { c.SharedMemory = limit })
	for r, g := range gs {
		if tr := g.Transport(); !strings.HasPrefix(tr, "shared memory") {
			t.Fatalf("rank %d: transport %q", r, tr)
		}
	}
	return gs, dir
}

// gatherAll all-gathers n float32 per rank on every group at once and checks
// what each received against rank r's input value(r, i).
func gatherAll(t *testing.T, gs []*gloo.Group, n int) {
	t.Helper()
	errs := make([]error, len(gs))
	recv := make([][]float32, len(gs))
	var wg sync.WaitGroup
	for r, g := range gs {
		send := make([]float32, n)
		for i := range send {
			send[i] = float32(value(r, i))
		}
		recv[r] = make([]float32, n*len(gs))
		wg.Go(func() { errs[r] = g.AllGather(context.Background(), send, recv[r]) })
	}
	wg.Wait()
	for r := range gs {
		if errs[r] != nil {
			t.Fatalf("rank %d: all-gather of %d: %v", r, n, errs[r])
		}
		for q := range gs {
			if s := firstMismatch(recv[r][q*n:(q+1)*n], func(i int) float64 { return value(q, i) }); s != "" {
				t.Fatalf("rank %d, all-gather of %d, rank %d's block: %s", r, n, q, s)
			}
		}
	}
}

// TestSharedMemoryFilesGrowAndGo: contributions larger than any before make
// every rank map larger files (in steps of 1 MiB), and no file is left in the
// directory once every rank has mapped it, while the groups are still open.
func TestSharedMemoryFilesGrowAndGo(t *testing.T) {
	gs, dir := shmGroups(t, 3, 1<<30)
	for _, n := range []int{1000, 3 << 18, 17, 9<<18 + 5, 1000} {
		gatherAll(t, gs, n)
		noFilesLeft(t, dir)
	}
}

// TestSharedMemoryFullFallsBackToTCP: when one rank cannot allocate its larger
// file (a full /dev/shm), every rank moves that contribution, and any larger,
// through TCP, and smaller ones keep going through shared memory.
func TestSharedMemoryFullFallsBackToTCP(t *testing.T) {
	gs, dir := shmGroups(t, 2, 1<<30)
	gatherAll(t, gs, 1000) // a 1 MiB file each
	full := 1
	gloo.FailDataFiles(&full)
	t.Cleanup(func() { gloo.FailDataFiles(nil) })
	gatherAll(t, gs, 1<<19) // 2 MiB per rank: rank 1 cannot grow
	want := "shared memory up to 2097151 bytes per rank"
	for r, g := range gs {
		if tr := g.Transport(); !strings.HasPrefix(tr, want) {
			t.Fatalf("rank %d after the failed allocation: %q, want %q", r, tr, want)
		}
	}
	gatherAll(t, gs, 1<<20)   // over the new limit: TCP without trying
	gatherAll(t, gs, 1<<18-1) // fits the 1 MiB files
	noFilesLeft(t, dir)
}
