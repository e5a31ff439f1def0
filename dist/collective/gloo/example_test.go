package gloo_test

import (
	"context"
	"fmt"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
)

// A single-rank group needs no store and no peers: every collective is a
// local copy. With Size > 1 each rank passes its Rank, the same Size and a
// Store (a *rdzv.Worker, or collective.DialStore(ctx, addr, timeout) of a
// collective.ServeStore run by one process).
func Example() {
	ctx := context.Background()
	g, err := gloo.New(ctx, collective.Config{Rank: 0, Size: 1, Hostname: "127.0.0.1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	grads := []float32{0.5, -1, 2}
	if err := g.AllReduce(ctx, grads, collective.Avg); err != nil {
		fmt.Println(err)
		return
	}
	all := make([]float32, g.Size()*len(grads))
	if err := g.AllGather(ctx, grads, all); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rank %d of %d: averaged %v, gathered %v\n", g.Rank(), g.Size(), grads, all)
	// Output:
	// rank 0 of 1: averaged [0.5 -1 2], gathered [0.5 -1 2]
}
