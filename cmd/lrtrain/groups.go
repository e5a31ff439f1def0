package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
	"github.com/lrtrain/lrtrain/dist/collective/ncclpg"
	"github.com/lrtrain/lrtrain/dist/rdzv"
	"github.com/lrtrain/lrtrain/dist/worker/workerenv"
	"github.com/lrtrain/lrtrain/train"
	"github.com/sugarme/gotch"
)

// groups are the process groups of one worker: dp, the data-parallel group of all ranks
// (nil for a single process), and shard, the ranks the frozen backbone is partitioned
// across (nil without sharding).
type groups struct {
	dp, shard collective.Group
	localRank int
	close     func()
}

// workerGroups forms the groups of a worker started by lrtrain launch: it opens the
// worker's rendezvous session for the launcher's round and forms the data-parallel
// group through it (NCCL on the worker's GPU, Gloo on the CPU) and, with
// dist.shard_group_size S > 1, a Gloo group of the S consecutive ranks this rank's
// backbone shard belongs to. When the session is lost the groups are aborted and the
// run cancelled with a cause naming the rendezvous (rank 0 then saves its last
// completed step).
func workerGroups(ctx context.Context, c *config.Config, cancelRun context.CancelCauseFunc) (groups, error) {
	none := groups{close: func() {}}
	shardSize := c.Dist.ShardGroupSize
	if _, ok := os.LookupEnv("LRTRAIN_RDZV_JOB"); !ok {
		if shardSize > 1 {
			return none, usageError{fmt.Errorf("train: dist.shard_group_size %d needs %d or more ranks: start the run with lrtrain launch", shardSize, shardSize)}
		}
		return none, nil
	}
	we, err := workerenv.Read(os.LookupEnv)
	if err != nil {
		return none, usageError{err}
	}
	none.localRank = we.LocalRank
	if shardSize > 1 && we.WorldSize%shardSize != 0 {
		return none, usageError{fmt.Errorf("train: dist.shard_group_size %d does not divide the world size %d", shardSize, we.WorldSize)}
	}
	if we.WorldSize == 1 {
		return none, nil
	}
	dev, err := train.ResolveDevice(c.Train.Device, we.LocalRank)
	if err != nil {
		return none, usageError{err}
	}
	backend := c.Dist.Backend
	if backend == "auto" {
		backend = autoBackend(dev)
	}
	if backend == "nccl" && !dev.IsCuda() {
		return none, usageError{fmt.Errorf("train: dist.backend nccl needs a GPU, and train.device %q resolved to the CPU "+
			"(the linked libtorch sees no CUDA device); use dist.backend gloo or auto", c.Train.Device)}
	}
	if shardSize > 1 && dev.IsCuda() {
		return none, usageError{fmt.Errorf("train: dist.shard_group_size %d: the sharded backbone is gathered on the CPU, "+
			"and train.device resolved to %v; use shard_group_size 1 on GPUs", shardSize, dev)}
	}
	return formGroups(ctx, we, backend, dev.Value, shardSize, c.Dist.Timeout, cancelRun)
}

// autoBackend is what dist.backend auto means on dev: NCCL on a GPU, Gloo on the CPU.
func autoBackend(dev gotch.Device) string {
	if dev.IsCuda() {
		return "nccl"
	}
	return "gloo"
}

// formGroups opens the worker's rendezvous session and forms its groups.
func formGroups(ctx context.Context, we workerenv.Env, backend string, gpu, shardSize int, timeout time.Duration,
	cancelRun context.CancelCauseFunc) (groups, error) {
	out := groups{localRank: we.LocalRank, close: func() {}}
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	w, err := rdzv.OpenWorker(ctx, we.Job, we.Round, we.Rank, we.WorldSize, we.RdzvOptions()...)
	if err != nil {
		return out, fmt.Errorf("train: rank %d: rendezvous: %w", we.Rank, err)
	}
	closed := make(chan struct{})
	go func() {
		select {
		case <-w.Done():
			cancelRun(fmt.Errorf("rank %d: %w (etcd at %v)", we.Rank, rdzv.ErrSessionLost, we.Endpoints))
		case <-closed:
		}
	}()
	host := "" // Gloo resolves the node's hostname
	if we.NumNodes == 1 {
		host = "127.0.0.1"
	}
	if backend == "nccl" {
		out.dp, err = ncclpg.New(ctx, ncclpg.Config{Rank: we.Rank, Size: we.WorldSize, Device: gpu, Store: w,
			AbortOn: w.Done(), Timeout: timeout})
	} else {
		out.dp, err = gloo.New(ctx, collective.Config{Rank: we.Rank, Size: we.WorldSize, Store: w,
			AbortOn: w.Done(), Hostname: host, Timeout: timeout})
	}
	if err != nil {
		w.Close()
		return out, fmt.Errorf("train: rank %d: form the %s group: %w", we.Rank, backend, err)
	}
	if shardSize > 1 {
		k := we.Rank / shardSize
		out.shard, err = gloo.New(ctx, collective.Config{Rank: we.Rank % shardSize, Size: shardSize, Store: w,
			Name: fmt.Sprintf("shard-%d", k), AbortOn: w.Done(), Hostname: host, Timeout: timeout})
		if err != nil {
			out.dp.Close()
			w.Close()
			return out, fmt.Errorf("train: rank %d: form shard group %d (ranks %d–%d): %w", we.Rank, k, k*shardSize, k*shardSize+shardSize-1, err)
		}
	}
	out.close = func() {
		close(closed)
		if out.shard != nil {
			out.shard.Close()
		}
		out.dp.Close()
		w.Close()
	}
	return out, nil
}
