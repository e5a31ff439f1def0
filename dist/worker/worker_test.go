package worker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"go.uber.org/zap"

	"github.com/lrtrain/lrtrain/dist/rdzv"
	"github.com/lrtrain/lrtrain/dist/worker"
	"github.com/lrtrain/lrtrain/dist/worker/workerenv"
)

// lookupOf is the environment w.Vars() describes, as a lookup function.
func lookupOf(w workerenv.Env) func(string) (string, bool) {
	env := map[string]string{}
	for _, kv := range w.Vars() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// launched is the environment of rank `rank` of a one-node world; nothing
// listens at its endpoint, so a test that gets as far as the rendezvous fails.
func launched(rank, world int) workerenv.Env {
	return workerenv.Env{Rank: rank, LocalRank: rank, WorldSize: world, LocalWorldSize: world, NumNodes: 1,
		MasterAddr: "127.0.0.1", MasterPort: 1, Job: "job", Endpoints: []string{"127.0.0.1:1"}}
}

func noEnv(string) (string, bool) { return "", false }

// Without the launcher's environment a run is a single process: no groups, the
// device resolved; sharding is refused as a usage error.
func TestSingleProcess(t *testing.T) {
	g, err := worker.Form(context.Background(), worker.Spec{Device: "cpu", Backend: "auto", Lookup: noEnv}, nil)
	if err != nil || g.DP != nil || g.Shard != nil || g.Env != nil || g.Device != gotch.CPU {
		t.Fatalf("groups %+v, error %v; want no groups on the CPU", g, err)
	}
	g.Close()
	_, err = worker.Form(context.Background(), worker.Spec{Device: "cpu", ShardGroupSize: 2, Lookup: noEnv}, nil)
	if !errors.Is(err, worker.ErrUsage) || !strings.Contains(err.Error(), "dist.shard_group_size 2 needs 2 or more ranks") {
		t.Fatalf("error %v; want a usage error asking for lrtrain launch", err)
	}
}

// A launched world of one gets no groups but its local rank and environment.
func TestWorldOfOne(t *testing.T) {
	w := launched(0, 1)
	g, err := worker.Form(context.Background(), worker.Spec{Device: "cpu", Backend: "gloo", Lookup: lookupOf(w)}, nil)
	if err != nil || g.DP != nil || g.Env == nil || g.Env.Job != "job" {
		t.Fatalf("groups %+v, error %v; want no groups and the environment", g, err)
	}
}

// Each refusal happens before a rendezvous session is opened (nothing listens at
// the environment's endpoint), matches ErrUsage and says why.
func TestRefusals(t *testing.T) {
	bad := lookupOf(launched(1, 2))
	missing := func(k string) (string, bool) {
		if k == workerenv.VarWorldSize {
			return "", false
		}
		return bad(k)
	}
	type refusal struct {
		name string
		spec worker.Spec
		want string
	}
	cases := []refusal{
		{"missing variable", worker.Spec{Device: "cpu", Lookup: missing}, `WORLD_SIZE=""`},
		{"shard size 2 of 3", worker.Spec{Device: "cpu", ShardGroupSize: 2, Lookup: lookupOf(launched(0, 3))},
			"dist.shard_group_size 2 does not divide the world size 3"},
		{"shard size 4 of 2", worker.Spec{Device: "cpu", ShardGroupSize: 4, Lookup: bad},
			"dist.shard_group_size 4 does not divide the world size 2"},
		{"bad device", worker.Spec{Device: "tpu", Lookup: bad}, `train.device "tpu"`},
	}
	if !gotch.CUDA.IsAvailable() {
		cases = append(cases,
			refusal{"nccl on the CPU", worker.Spec{Device: "auto", Backend: "nccl", Lookup: bad}, "dist.backend nccl needs a GPU"},
			refusal{"no GPU", worker.Spec{Device: "cuda:1", Backend: "auto", Lookup: bad}, "no CUDA device"})
	}
	for _, c := range cases {
		g, err := worker.Form(context.Background(), c.spec, nil)
		if !errors.Is(err, worker.ErrUsage) || !strings.Contains(err.Error(), c.want) || g.DP != nil {
			t.Errorf("%s: groups %+v, error %v; want a usage error with %q", c.name, g, err, c.want)
		}
		g.Close()
	}
}

// A rendezvous that cannot be reached fails the formation, naming the rank, and
// is not a usage error.
func TestUnreachableRendezvous(t *testing.T) {
	w := launched(1, 2)
	w.DialTimeout = 300 * time.Millisecond
	_, err := worker.Form(context.Background(), worker.Spec{Device: "cpu", Backend: "gloo", Lookup: lookupOf(w),
		RdzvOptions: []rdzv.Option{rdzv.WithLogger(zap.NewNop())}}, nil)
	if err == nil || errors.Is(err, worker.ErrUsage) || !strings.Contains(err.Error(), "rank 1: rendezvous") {
		t.Fatalf("error %v; want a rendezvous failure of rank 1", err)
	}
}
