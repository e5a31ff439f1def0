package gloo_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
)

// shmGroups forms size ranks in this process on shared memory with windows
// of window bytes, their files in a directory of the test's own (returned).
func shmGroups(t *testing.T, size int, window int64) ([]*gloo.Group, string) {
	t.Helper()
	dir := t.TempDir()
	gloo.SetShmDir(dir)
	t.Cleanup(func() { gloo.SetShmDir("/dev/shm") })
	gs := groups(t, size, 30*time.Second, func(_ int, c *collective.Config) { c.SharedMemory = window })
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

// TestSharedMemoryWindows moves contributions smaller and larger than a
// window, and not multiples of it, also in place, and leaves no file in the
// directory once every rank has mapped the others'.
func TestSharedMemoryWindows(t *testing.T) {
	gs, dir := shmGroups(t, 3, 4096)
	noFilesLeft(t, dir)
	for _, n := range []int{1000, 1024, 1025, 3 << 18, 17} {
		gatherAll(t, gs, n)
	}
	// In place: each rank's send is its own block of recv, as NCCL's in-place
	// all-gather takes it.
	const n = 3000
	recv := make([][]float32, len(gs))
	errs := make([]error, len(gs))
	var wg sync.WaitGroup
	for r, g := range gs {
		recv[r] = make([]float32, n*len(gs))
		for i := range n {
			recv[r][r*n+i] = float32(value(r, i))
		}
		wg.Go(func() { errs[r] = g.AllGather(context.Background(), recv[r][r*n:(r+1)*n], recv[r]) })
	}
	wg.Wait()
	for r := range gs {
		if errs[r] != nil {
			t.Fatalf("rank %d: in-place all-gather: %v", r, errs[r])
		}
		for q := range gs {
			if s := firstMismatch(recv[r][q*n:(q+1)*n], func(i int) float64 { return value(q, i) }); s != "" {
				t.Fatalf("rank %d, in-place all-gather, rank %d's block: %s", r, q, s)
			}
		}
	}
}

// TestSharedMemoryUnavailableMeansTCP: when one rank cannot allocate its file
// (a full /dev/shm), every rank runs on TCP and says why.
func TestSharedMemoryUnavailableMeansTCP(t *testing.T) {
	dir := t.TempDir()
	gloo.SetShmDir(dir)
	full := 1
	gloo.FailFiles(&full)
	t.Cleanup(func() {
		gloo.SetShmDir("/dev/shm")
		gloo.FailFiles(nil)
	})
	gs := groups(t, 3, 30*time.Second, func(_ int, c *collective.Config) { c.SharedMemory = 1 << 20 })
	for r, g := range gs {
		want := "tcp (shared memory: another rank could not create its file"
		if r == full {
			want = "tcp (shared memory: allocate " + dir
		}
		if tr := g.Transport(); !strings.HasPrefix(tr, want) {
			t.Errorf("rank %d: transport %q, want %q…", r, tr, want)
		}
	}
	gatherAll(t, gs, 1000)
	noFilesLeft(t, dir)
}

// A window too small for the group is a configuration error.
func TestSharedMemoryWindowTooSmall(t *testing.T) {
	_, err := gloo.New(context.Background(), collective.Config{Rank: 0, Size: 2, SharedMemory: 100, Hostname: "127.0.0.1"})
	if !errors.Is(err, collective.ErrConfig) || !strings.Contains(err.Error(), "window of 100 bytes") {
		t.Fatalf("got %v, want ErrConfig naming the window", err)
	}
}
