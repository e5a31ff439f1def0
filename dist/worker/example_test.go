package worker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/lrtrain/lrtrain/dist/worker"
)

// lrtrain train forms its worker's groups from the configuration and the
// environment; outside lrtrain launch there are none, and the run is alone.
func Example() {
	notLaunched := func(string) (string, bool) { return "", false }
	spec := worker.Spec{Device: "cpu", Backend: "auto", ShardGroupSize: 1, Lookup: notLaunched}
	g, err := worker.Form(context.Background(), spec, func(error) {})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	fmt.Println(g.DP == nil, g.Device.IsCuda(), worker.AutoBackend(g.Device))

	spec.ShardGroupSize = 2 // a sharded backbone needs launched ranks
	_, err = worker.Form(context.Background(), spec, func(error) {})
	fmt.Println(errors.Is(err, worker.ErrUsage), err)
	// Output:
	// true false gloo
	// true train: dist.shard_group_size 2 needs 2 or more ranks: start the run with lrtrain launch
}
