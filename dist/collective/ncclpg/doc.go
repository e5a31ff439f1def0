// Package ncclpg implements collective.Group (and every optional
// collective interface) over NCCL, for GPU ranks. Its in-flight, abort and
// close bookkeeping is collective.Lifecycle, shared with the gloo package.
//
// New loads libnccl and libcudart (nccl.Init; see the nccl package for the
// search and the LRTRAIN_NCCL_LIBRARY / LRTRAIN_CUDART_LIBRARY overrides),
// lets rank 0 make the communicator's unique id and publish it in hex
// through the Store, and joins the communicator on Config.Device.
//
// # Threads
//
// CUDA's current device belongs to the OS thread. Each Group therefore owns
// one goroutine locked to its OS thread, on which it sets the device and
// makes every CUDA and NCCL call (setup, copies, collectives, the watchdog's
// polling, the final abort or destroy). Callers may use a Group from any
// goroutine without locking theirs; calls are serialised.
//
// # Host slices and device pointers
//
// The slice methods (Broadcast moves bytes, as ncclBroadcast of uint8) copy
// the slice into a device staging buffer (kept and grown to the largest
// request), run the NCCL collective on the group's stream, waits for it
// with the nccl package's Watchdog and copy the result back. AllReduceRaw
// (collective.RawAllReducer) and AllGatherRaw (collective.RawAllGatherer)
// skip the copies and work on device memory in place (the shard package's
// gathered backbone blocks); their caller must have finished writing the
// memory first.
//
// # Ordering by events
//
// AllReduceRawOrdered (collective.StreamOrderedAllReducer) is the path the
// trainer uses for gradients on GPU ranks; AllGatherRawOrdered and
// ReduceScatterRawOrdered (collective.StreamOrderedAllGatherer and
// StreamOrderedReduceScatterer) are the sharded backbone's gathers and
// model.split_delta's exchange. Instead of the caller
// synchronising the device before the call, the group records an event on
// the caller's stream (libtorch's, the legacy default stream) and makes its
// own stream wait for it, enqueues the collective, and after it records an
// event on its stream that the caller's stream waits for. The host never
// waits for the caller's stream; it still waits for the group's stream,
// bounded by Config.Timeout, as for every collective: that bounded wait is
// the watchdog for a dead peer.
//
// # Failures
//
// Every init, enqueue, wait and close is bounded by Config.Timeout and by
// the caller's context. On NCCL >= 2.14 the communicator is non-blocking
// (nccl.CommInit): its init and collectives answer ncclInProgress and are
// polled through ncclCommGetAsyncError; on older libraries a blocking call
// that hangs inside NCCL is aborted from a separate goroutine
// (nccl.Watchdog.Run). On a timeout, a cancelled context, Abort, Close
// during a call or the AbortOn channel firing, ncclCommAbort is called and
// the call returns an error naming the collective, the rank and the time
// waited, wrapping collective.ErrTimeout, ErrAborted or ErrPeerLost and the
// nccl package's *nccl.AbortError. The group is broken from then on (later
// calls wrap collective.ErrBroken); form a new one. A broken communicator
// is aborted, never destroyed. No caller waits for the device thread more
// than a call's timeout plus abortGrace (10 s): a thread still inside NCCL
// after that is abandoned, and Close returns at once instead of waiting.
//
// Avg uses ncclAvg on NCCL >= 2.10; on older libraries the host-slice calls
// reduce with Sum and divide by the group size, and AllReduceRaw rejects
// Avg.
//
// # Testing
//
// The tests load the fake libraries of internal/fakenccl (host memory
// standing for device memory), compiled from their C sources at test time:
// one rank, or two groups in one process meeting through the fake's shared
// directory with real results. FAKE_CUDA_STREAM_HANG makes a stream hang,
// FAKE_NCCL_ENQUEUE_BLOCK makes a collective block inside the library until
// it is aborted (or for good), to exercise every abort path.
package ncclpg
