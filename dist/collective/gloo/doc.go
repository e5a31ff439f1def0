// Package gloo is lrtrain's CPU process group (collective.Group):
// all-reduce, all-gather, broadcast, reduce-scatter and barrier over Go
// slices (or raw memory, see collective.RawAllReducer and RawAllGatherer), on Gloo's TCP
// transport (Debian's libgloo-dev; no libtorch needed), or, when every rank
// runs on one host and Config.SharedMemory asks for it, through files in
// /dev/shm (see "Shared memory on one host"). It is the only package that links
// libgloo; the interface it implements is in dist/collective, which has no cgo.
//
// # Forming a group
//
// Every rank calls New with its Rank, the same Size and Name, and a
// collective.Store through which the ranks swap their listening addresses;
// New returns once every pair of ranks is connected (a full mesh, one TCP
// connection per pair). In a job, the Store is the rendezvous worker
// (*rdzv.Worker has the two methods Store needs, so addresses go through
// etcd) and AbortOn its Done() channel:
//
//	w, _ := rdzv.OpenWorker(ctx, job, round, rank, world)
//	g, err := gloo.New(ctx, collective.Config{
//		Rank: rank, Size: world, Store: w, AbortOn: w.Done(),
//		Hostname: nodeAddr, Timeout: 5 * time.Minute})
//
// Without etcd, one process runs collective.ServeStore and every rank uses
// collective.DialStore(ctx, addr, timeout). Hostname (or Interface) says
// where a rank listens and its peers dial: "127.0.0.1" on one machine.
//
// The single shim (gloo_shim.cc, behind cgo.go) wraps Gloo's own ring
// all-reduce, ring all-gather, binomial broadcast and dissemination
// barrier (a broadcast moves bytes, so any element type goes through it);
// reduce-scatter is a ring over Gloo's transport written in the shim,
// since Gloo has no reduce-scatter with options and timeouts. Go
// memory is handed to Gloo only for the duration of a call: every call
// blocks until Gloo is done with the buffers.
//
// # Failures
//
// Every collective is bounded by Config.Timeout (shortened by the
// context's deadline) and returns an error that names the op, the rank,
// the world size, the element count and the timeout:
//
//   - a dead peer: its sockets close, so its neighbours fail at once with
//     collective.ErrPeerLost;
//   - a hung peer (alive, not calling): the ranks waiting on it fail with
//     collective.ErrTimeout when the timeout runs out;
//   - Abort, a cancelled context, or AbortOn firing: the call in flight
//     fails with collective.ErrAborted within milliseconds.
//
// A rank whose collective fails resets all its connections, so the ranks
// blocked on it fail at once with ErrPeerLost instead of waiting for their
// own timeouts: one dead rank makes every rank's collective fail within the
// timeout, most of them within milliseconds (TestKilledRankFailsSurvivors:
// about 40 ms after a SIGKILL). A group that failed stays failed
// (collective.ErrBroken); the launcher forms a new one in the next
// rendezvous round. The in-flight,
// abort and close bookkeeping is collective.Lifecycle, shared with ncclpg.
//
// Gloo writes to its sockets from its own thread without MSG_NOSIGNAL; the
// shim starts that thread with SIGPIPE blocked, as Go would otherwise kill
// the process when a peer dies mid-write.
//
// # Shared memory on one host
//
// With Config.SharedMemory > 0 (lrtrain's workers ask for DefaultSharedMemory)
// New checks, through the Store, whether every rank runs on this host (the
// kernel's boot ID, the tmpfs at /dev/shm, the hostname and the network
// namespace agree) and, through Gloo, whether every rank can create its file
// there (a header page and a window of SharedMemory bytes, allocated in full)
// and map every other's. If so, every collective moves through the files
// (shm.go, shmops.go), a window at a time: each rank writes its part of the
// window into its own file, posts its counter, waits for its peers' counters
// and reads their windows into its result; all-gathers copy in rank order,
// reductions fold in rank order, so every rank computes the same bits. If not,
// every collective goes through TCP as before; Transport says which. The files
// are unlinked once every rank has mapped them, so nothing outlives the ranks;
// the file of a rank killed during that setup is removed by the next group
// formed on the host (older than a minute, nobody holding its lock).
//
// On either transport the raw all-gather and reduce-scatter also run in place,
// as NCCL defines it: an all-gather whose send is this rank's own block of recv,
// a reduce-scatter whose recv is this rank's own block of send.
//
// The failure semantics above hold on this transport too: a wait sleeps on
// its peer's counter (a futex) in ticks of 2 ms and between them checks the
// abort flag, the deadline, the peer's failure word and the peer's flock on its
// file (released by the kernel however the process died): a killed rank fails
// its peers within milliseconds, a hung one at the timeout.
//
// # Performance
//
// dist/collective/bench/allreduce measures all-reduce between processes on
// one machine and compares it with copy() and with PyTorch's Gloo backend
// (torch_ref.py).
// On the 2-core development VM, 256 MiB took 170-290 ms with 2 ranks
// (bus bandwidth 0.9-1.6 GB/s; copy() runs at 18-20 GB/s) and 1 KiB about
// 1-2 ms (4-5 ms with 4 ranks): as fast as PyTorch 1.13's ProcessGroupGloo
// on the same machine, faster on large buffers. See bench/allreduce for the
// table and why loopback on two cores is this slow.
package gloo
