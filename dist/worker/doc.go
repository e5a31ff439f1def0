// Package worker forms what a training worker started by lrtrain launch
// trains with: its device and its process groups.
//
// Form reads the launcher's environment (package workerenv, which the
// launcher imports to write it: a worker never imports dist/launch or the
// embedded etcd server), resolves train.device once for the worker's local
// rank (the result goes to train.Run through train.Env.Device), and, for a
// world of more than one rank, opens the worker's rendezvous session
// (dist/rdzv) on the launcher's round and forms through it:
//
//   - the data-parallel group of all ranks: NCCL (dist/collective/ncclpg) on
//     the worker's GPU, Gloo (dist/collective/gloo) on the CPU, as
//     dist.backend says (auto: by the device);
//   - with dist.shard_group_size S > 1, a group of the S consecutive ranks
//     this rank's frozen-backbone shard belongs to (S must divide the world
//     size): a second NCCL communicator, "shard-<k>", on a GPU (the shard
//     package all-gathers into device buffers), Gloo on the CPU.
//
// A process not started by the launcher, and a launched world of one, get
// no groups (train.Run then runs alone). When the session is lost the groups
// are aborted (their AbortOn is the session's Done) and the run is cancelled
// with a cause wrapping rdzv.ErrSessionLost and naming etcd.
//
// Errors of configuration or environment (a missing or malformed variable,
// named; a device that is not here; NCCL without a GPU; a shard size that
// does not divide the world) match ErrUsage, which lrtrain train maps to its
// usage exit status 2; a failed rendezvous or group formation does not.
package worker
