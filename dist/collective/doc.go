// Package collective is lrtrain's process-group interface, with no cgo: code
// that names a ProcessGroup (the trainer, shard/) links no collective
// library. The backends live in their own packages: gloo (CPU, Gloo's TCP
// transport) and ncclpg (GPU, NCCL loaded at run time).
//
// # The interface
//
// ProcessGroup holds the five calls the trainer makes: Rank, Size,
// AllReduceFloat64 (gradients and metrics), AllGather (backbone shards) and
// Broadcast (the initial adapters). Broadcast moves bytes, so any element
// type goes through it bit for bit: BroadcastSlice takes a slice of
// float32, float64, int64 or any other fixed-size number. The rest are
// optional interfaces that callers reach by type assertion: AllReducer
// (float32), ReduceScatterer, Barrierer, RawAllReducer (memory Go does not
// own, such as a tensor's data, reduced in place), RawAllGatherer and
// RawReduceScatterer (the same for the gather and the reduce-scatter: the
// trainer's sharded backbone and model.split_delta). Group adds Abort and
// Close, which the code that formed a group calls. Both backends implement
// all of them; ncclpg also implements StreamOrderedAllReducer,
// StreamOrderedAllGatherer and StreamOrderedReduceScatterer (the raw
// collectives ordered against a CUDA stream by events, with no device-wide
// synchronisation: the trainer's gradients, gathered blocks and
// model.split_delta's exchange on GPUs).
//
// # What the backends share
//
//   - Lifecycle: one collective at a time, the first failure breaking the
//     group for good (later calls wrap ErrBroken), Abort from any goroutine,
//     an AbortOn channel (the rendezvous session's Done), and Close that
//     aborts a call in flight before it releases the backend once.
//   - The sentinel errors (ErrConfig, ErrStore, ErrTimeout, ErrPeerLost,
//     ErrAborted, ErrBroken, ErrClosed), matched with errors.Is.
//   - Store, through which the ranks of a group meet: *rdzv.Worker (etcd)
//     in a job, or TCPStore, a small key-value server one process runs with
//     ServeStore and every rank dials with DialStore.
//   - Config, a Gloo rank's settings (and ListenAddress, the numeric
//     address it listens on), DefaultTimeout and DefaultName.
package collective
