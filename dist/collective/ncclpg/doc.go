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
// (collective.RawAllReducer) skips the copies and reduces device memory in
// place: that is the path the trainer should use for CUDA tensors.
//
// # Failures
//
// Every wait is bounded by Config.Timeout and by the caller's context.
// On a timeout, a cancelled context, Abort, Close during a call or the
// AbortOn channel firing, the watchdog calls ncclCommAbort and the call
// returns an error naming the collective, the rank and the time waited,
// wrapping collective.ErrTimeout, ErrAborted or ErrPeerLost and the nccl
// package's *nccl.AbortError. The group is broken from then on (later calls
// wrap collective.ErrBroken); form a new one.
//
// Avg uses ncclAvg on NCCL >= 2.10; on older libraries the host-slice calls
// reduce with Sum and divide by the group size, and AllReduceRaw rejects
// Avg.
//
// # Testing
//
// The tests load the fake libraries of internal/fakenccl (one rank,
// host memory standing for device memory), compiled from their C sources
// at test time; FAKE_CUDA_STREAM_HANG makes a stream hang to exercise the
// watchdog.
package ncclpg
