package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
	"github.com/lrtrain/lrtrain/dist/collective/ncclpg"
	"github.com/lrtrain/lrtrain/dist/rdzv"
	"github.com/lrtrain/lrtrain/dist/worker/workerenv"
	"github.com/lrtrain/lrtrain/train"
)

// ErrUsage is matched (errors.Is) by the errors of an invalid configuration or
// environment: a bad or missing worker variable, a train.device that names no
// device here, dist.backend nccl without a GPU, a shard group size that does
// not divide the world. The command maps it to its usage exit status; the
// error's text is the cause's alone.
var ErrUsage = errors.New("worker: invalid configuration or environment")

// usage marks err as an ErrUsage without changing its text.
type usage struct{ error }

func (u usage) Is(target error) bool { return target == ErrUsage }
func (u usage) Unwrap() error        { return u.error }

// DefaultTimeout is a collective's timeout when Spec.Timeout is not positive.
const DefaultTimeout = 30 * time.Minute

// Spec is what forming a worker's groups takes from its configuration.
type Spec struct {
	// Device is train.device: auto, cpu, cuda or cuda:N (see train.ResolveDevice).
	Device string
	// Backend is dist.backend: auto (NCCL on a GPU, Gloo on the CPU), nccl or gloo.
	Backend string
	// ShardGroupSize is dist.shard_group_size: with S > 1 the frozen backbone is
	// partitioned across S consecutive ranks; 0 or 1: no sharding.
	ShardGroupSize int
	// Timeout bounds every collective; not positive: DefaultTimeout.
	Timeout time.Duration
	// SharedMemory is dist.shared_memory: Gloo groups whose ranks share a host
	// move their collectives through /dev/shm, in windows of
	// gloo.DefaultSharedMemory bytes.
	SharedMemory bool
	// Lookup reads the environment; nil means os.LookupEnv.
	Lookup func(string) (string, bool)
	// RdzvOptions are appended to the launcher's (a logger, a wait timeout).
	RdzvOptions []rdzv.Option
}

// SpecOf is the Spec of a configuration: train.device and the dist section.
func SpecOf(c *config.Config) Spec {
	return Spec{Device: c.Train.Device, Backend: c.Dist.Backend, ShardGroupSize: c.Dist.ShardGroupSize,
		Timeout: c.Dist.Timeout, SharedMemory: c.Dist.SharedMemory}
}

// Groups is what a worker trains with: its device and process groups.
type Groups struct {
	// DP is the data-parallel group of all ranks; nil for a single process.
	DP collective.Group
	// Shard is the group of ranks this rank's backbone shard is partitioned
	// across; nil without sharding.
	Shard collective.Group
	// Env is the launcher's environment; nil when not started by lrtrain launch.
	Env *workerenv.Env
	// LocalRank is the worker's rank on its node (0 when not launched).
	LocalRank int
	// Device is the device train.device resolved to, once, for this worker; hand
	// it to train.Run through train.Env.Device.
	Device gotch.Device
	close  func()
}

// Close releases the groups and the rendezvous session; it is safe on the
// Groups of a failed Form and more than once.
func (g *Groups) Close() {
	if g != nil && g.close != nil {
		g.close()
		g.close = nil
	}
}

// AutoBackend is what dist.backend auto means on dev: NCCL on a GPU, Gloo on the CPU.
func AutoBackend(dev gotch.Device) string {
	if dev.IsCuda() {
		return "nccl"
	}
	return "gloo"
}

// Form resolves the worker's device and forms its groups. A process not
// started by lrtrain launch (LRTRAIN_RDZV_JOB unset) and a launched world of
// one get no groups. Otherwise it opens the worker's rendezvous session for
// the launcher's round and forms the data-parallel group through it (NCCL on
// the worker's GPU, Gloo on the CPU) and, with ShardGroupSize S > 1, a group
// of the S consecutive ranks this rank's backbone shard belongs to: NCCL on a
// GPU (a second communicator, "shard-<k>", whose all-gather writes into the
// device buffers), Gloo on the CPU, whatever dist.backend says.
// When the session is lost the groups are aborted and cancelRun is called
// with a cause naming the rendezvous (rank 0 then saves its last completed
// step). Errors of configuration or environment match ErrUsage.
func Form(ctx context.Context, s Spec, cancelRun context.CancelCauseFunc) (*Groups, error) {
	lookup := s.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if cancelRun == nil {
		cancelRun = func(error) {}
	}
	out := &Groups{}
	shardSize := s.ShardGroupSize
	if !workerenv.Launched(lookup) {
		if shardSize > 1 {
			return out, usage{fmt.Errorf("train: dist.shard_group_size %d needs %d or more ranks: start the run with lrtrain launch", shardSize, shardSize)}
		}
		return out, resolve(out, s.Device)
	}
	we, err := workerenv.Read(lookup)
	if err != nil {
		return out, usage{fmt.Errorf("train: %w", err)}
	}
	out.Env, out.LocalRank = &we, we.LocalRank
	if shardSize > 1 && we.WorldSize%shardSize != 0 {
		return out, usage{fmt.Errorf("train: dist.shard_group_size %d does not divide the world size %d", shardSize, we.WorldSize)}
	}
	if err := resolve(out, s.Device); err != nil || we.WorldSize == 1 {
		return out, err
	}
	dev := out.Device
	backend := s.Backend
	if backend == "" || backend == "auto" {
		backend = AutoBackend(dev)
	}
	if backend == "nccl" && !dev.IsCuda() {
		return out, usage{fmt.Errorf("train: dist.backend nccl needs a GPU, and train.device %q resolved to the CPU "+
			"(the linked libtorch sees no CUDA device); use dist.backend gloo or auto", s.Device)}
	}
	return out, form(ctx, out, s, backend, cancelRun)
}

// resolve sets g.Device from train.device for g's local rank.
func resolve(g *Groups, device string) error {
	dev, err := train.ResolveDevice(device, g.LocalRank)
	if err != nil {
		return usage{err}
	}
	g.Device = dev
	return nil
}

// form opens the worker's rendezvous session and forms g's groups with backend.
func form(ctx context.Context, g *Groups, s Spec, backend string, cancelRun context.CancelCauseFunc) error {
	we := *g.Env
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	w, err := rdzv.OpenWorker(ctx, we.Job, we.Round, we.Rank, we.WorldSize, append(we.RdzvOptions(), s.RdzvOptions...)...)
	if err != nil {
		return fmt.Errorf("train: rank %d: rendezvous: %w", we.Rank, err)
	}
	closed := make(chan struct{})
	go func() {
		select {
		case <-w.Done():
			cancelRun(fmt.Errorf("rank %d: %w (etcd at %v)", we.Rank, rdzv.ErrSessionLost, we.Endpoints))
		case <-closed:
		}
	}()
	release := func() {
		close(closed)
		w.Close()
	}
	host := "" // Gloo resolves the node's hostname
	if we.NumNodes == 1 {
		host = "127.0.0.1"
	}
	var shm int64
	if s.SharedMemory {
		shm = gloo.DefaultSharedMemory
	}
	if backend == "nccl" {
		g.DP, err = ncclpg.New(ctx, ncclpg.Config{Rank: we.Rank, Size: we.WorldSize, Device: g.Device.Value, Store: w,
			AbortOn: w.Done(), Timeout: timeout})
	} else {
		g.DP, err = gloo.New(ctx, collective.Config{Rank: we.Rank, Size: we.WorldSize, Store: w,
			AbortOn: w.Done(), Hostname: host, Timeout: timeout, SharedMemory: shm})
	}
	if err != nil {
		g.DP = nil
		release()
		return fmt.Errorf("train: rank %d: form the %s group: %w", we.Rank, backend, err)
	}
	if n := s.ShardGroupSize; n > 1 {
		k := we.Rank / n
		name := fmt.Sprintf("shard-%d", k)
		if g.Device.IsCuda() {
			g.Shard, err = ncclpg.New(ctx, ncclpg.Config{Rank: we.Rank % n, Size: n, Device: g.Device.Value, Store: w,
				Name: name, AbortOn: w.Done(), Timeout: timeout})
		} else {
			g.Shard, err = gloo.New(ctx, collective.Config{Rank: we.Rank % n, Size: n, Store: w,
				Name: name, AbortOn: w.Done(), Hostname: host, Timeout: timeout, SharedMemory: shm})
		}
		if err != nil {
			g.Shard = nil
			g.DP.Close()
			g.DP = nil
			release()
			return fmt.Errorf("train: rank %d: form shard group %d (ranks %d–%d): %w", we.Rank, k, k*n, k*n+n-1, err)
		}
	}
	g.close = func() {
		if g.Shard != nil {
			g.Shard.Close()
		}
		g.DP.Close()
		release()
	}
	return nil
}
