package gloo_test

import (
	"context"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
)

// BenchmarkBlockCollectives times, side by side, what model.split_delta's exchange can
// use between 2 ranks for a block of 47 MiB of float32 per rank (about the small
// preset's held weights over 2 ranks): an all-reduce of both blocks, an all-gather of
// the blocks and a reduce-scatter of both blocks. One op is both ranks' call, after an
// untimed first one. Each runs over Gloo's TCP and over shared memory with windows of
// 1, 4 and 16 MiB per rank; "unit" is the all-gather of one block of the small preset's
// sharded backbone (5.6 MiB per rank), the size shard.Gatherer moves 18 times a step.
//
//	go test -run '^$' -bench BlockCollectives -benchtime 5x ./dist/collective/gloo/
func BenchmarkBlockCollectives(b *testing.B) {
	for _, tr := range []struct {
		name  string
		limit int64
	}{{"tcp", 0}, {"shm-window-1MiB", 1 << 20}, {"shm-window-4MiB", 4 << 20}, {"shm-window-16MiB", 16 << 20}} {
		b.Run(tr.name, func(b *testing.B) {
			blockCollectives(b, groups(b, 2, time.Minute, func(_ int, c *collective.Config) { c.SharedMemory = tr.limit }))
		})
	}
}

func blockCollectives(b *testing.B, gs []*gloo.Group) {
	const n = 47 << 20 / 4
	ctx := context.Background()
	var full, gathered, block [2][]float32
	for r := range 2 {
		full[r], gathered[r], block[r] = make([]float32, 2*n), make([]float32, 2*n), make([]float32, n)
	}
	call := func(b *testing.B, f func(r int) error) {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for r := range 2 {
			wg.Go(func() { errs[r] = f(r) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	both := func(b *testing.B, f func(r int) error) {
		call(b, f) // untimed: the first call faults in the buffers' pages
		for b.Loop() {
			call(b, f)
		}
	}
	p := func(s []float32) unsafe.Pointer { return unsafe.Pointer(&s[0]) }
	b.Run("allreduce-2-blocks", func(b *testing.B) {
		both(b, func(r int) error { return gs[r].AllReduceRaw(ctx, p(full[r]), 2*n, collective.Float32, collective.Sum) })
	})
	b.Run("allgather-1-block", func(b *testing.B) {
		both(b, func(r int) error { return gs[r].AllGatherRaw(ctx, p(block[r]), p(gathered[r]), n, collective.Float32) })
	})
	b.Run("allgather-unit", func(b *testing.B) {
		const unit = 45 << 17 / 4 // 11.25 MiB over 2 ranks
		both(b, func(r int) error {
			return gs[r].AllGatherRaw(ctx, p(block[r]), p(gathered[r]), unit, collective.Float32)
		})
	})
	b.Run("reducescatter-2-blocks", func(b *testing.B) {
		both(b, func(r int) error {
			return gs[r].ReduceScatterRaw(ctx, p(full[r]), p(block[r]), n, collective.Float32, collective.Sum)
		})
	})
}
