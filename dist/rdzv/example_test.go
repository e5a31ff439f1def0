package rdzv_test

import (
	"context"
	"fmt"
	"os"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
	"github.com/lrtrain/lrtrain/dist/rdzv"
	"go.uber.org/zap"
)

// A single-node job: start an embedded etcd, form a one-node round with two
// workers, publish a value for the workers and look it up.
func Example() {
	dir, err := os.MkdirTemp("", "rdzv-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	srv, err := etcdembed.Start(ctx, dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	agent, err := rdzv.NewAgent(ctx, "example-job",
		rdzv.WithEndpoints(srv.Endpoint()), rdzv.WithAgentID("node-0"),
		rdzv.WithNproc(2), rdzv.WithLogger(zap.NewNop()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer agent.Close()

	round, err := agent.Join(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("round %d: node %d of %d, world size %d\n",
		round.Number, round.NodeRank, round.NumNodes, round.WorldSize)
	for local := 0; local < round.LocalWorldSize(); local++ {
		fmt.Printf("local rank %d -> global rank %d\n", local, round.GlobalRank(local))
	}

	if err := agent.Publish(ctx, "master-addr", []byte("127.0.0.1:29500")); err != nil {
		fmt.Println(err)
		return
	}
	addr, err := agent.Lookup(ctx, "master-addr")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("master-addr =", string(addr))
	// Output:
	// round 0: node 0 of 1, world size 2
	// local rank 0 -> global rank 0
	// local rank 1 -> global rank 1
	// master-addr = 127.0.0.1:29500
}
