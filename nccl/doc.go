// Package nccl binds the NCCL collective library and the few CUDA runtime
// calls needed to drive it, for the data-parallel all-reduce of adapter
// gradients on GPU ranks.
//
// Like go-nvml, the package builds and links on machines without NCCL or
// CUDA: nothing links against libnccl or libcudart. Init dlopens
// libnccl.so.2 and libcudart.so at run time and resolves each function with
// dlsym; small C trampolines in cgo.go call through those pointers (cgo,
// not purego, because ncclCommInitRank takes the 128-byte ncclUniqueId by
// value). Before a successful Init every call returns ErrNotLoaded; when a
// library cannot be found, Init returns a *LoadError wrapping
// ErrLibraryNotFound that lists every path tried with dlopen's message.
//
// # Finding the libraries
//
// LRTRAIN_NCCL_LIBRARY and LRTRAIN_CUDART_LIBRARY name the files to load;
// when set, nothing else is tried. Otherwise Init takes, in order: a copy the
// process has already loaded under one of the sonames (libtorch_cuda's
// libcudart: the same runtime as torch); each soname through the dynamic
// loader (LD_LIBRARY_PATH, RUNPATH, /etc/ld.so.cache); then every
// LD_LIBRARY_PATH directory; pip's layouts (nvidia/nccl/lib for NCCL, CUDA 13's
// nvidia/cu13/lib and CUDA 12's nvidia/cuda_runtime/lib for the runtime) under
// the site-packages of VIRTUAL_ENV, CONDA_PREFIX, PYTHONHOME, PYTHONPATH,
// ~/.local and the system-wide Pythons (/usr/local/lib/python3*/dist-packages,
// /usr/lib/python3/dist-packages, /usr/lib/python3*/site-packages,
// /opt/conda); conda's lib ($CONDA_PREFIX/lib, /opt/conda/lib); and lib64 and
// lib under NCCL_HOME (NCCL), CUDA_HOME, CUDA_PATH and /usr/local/cuda. In
// each place the newest soname comes first (libcudart.so.13 before .so.12).
// When nothing opens, the *LoadError names every soname, directory and
// pattern it looked at, and each file that exists but failed to open with
// dlopen's reason (discover.go).
//
// # Waiting without hanging
//
// Collectives are asynchronous: they are enqueued on a CUDA stream and
// return at once. A rank that waits with cudaStreamSynchronize for a peer
// that died waits forever, so wait with WaitStream or a Watchdog instead:
// they poll cudaStreamQuery and ncclCommGetAsyncError, and on a per-collective
// timeout, on cancellation of the context (the rendezvous cancels it when
// the etcd session is lost) or on a communicator error they call
// ncclCommAbort and return an *AbortError naming the collective, the rank
// and the time waited. The watchdog needs only the three calls of the
// Pending interface, which is how it is tested without a GPU.
//
// The enqueue itself can block too (a blocking communicator whose peers
// never arrive), so Watchdog.Run bounds enqueue and wait together: a
// separate goroutine calls ncclCommAbort when the deadline passes while the
// call is still inside NCCL. Where NCCL has them (>= 2.14), CommInit makes
// non-blocking communicators (ncclCommInitRankConfig, blocking = 0): init
// and collectives may answer ncclInProgress, and the package polls
// ncclCommGetAsyncError until they settle, aborting on the same deadline.
// Init, enqueue and wait therefore each end within the timeout plus one
// poll interval and the time NCCL takes to return once aborted; only a
// blocking ncclCommInitRank (NCCL < 2.14) cannot be interrupted, and its
// callers abandon it instead (see CommInit).
//
// # Ordering streams by events
//
// A collective runs on its own stream, but its input is written by kernels on
// another (libtorch's: DefaultStream, the legacy default stream) and its
// output read there. Rather than synchronise the whole device from the host
// before the collective, order the streams on the device with events, as
// PyTorch's ProcessGroupNCCL does: OrderAfter(ncclStream, DefaultStream, e)
// records e on the compute stream and makes the NCCL stream wait for it;
// after the collective, OrderAfter(DefaultStream, ncclStream, e2) makes the
// compute stream wait for it. EventCreate makes events with timing disabled
// (cudaEventDisableTiming); EventRecord, EventQuery, StreamWaitEvent and
// EventDestroy are the bare calls. None of them blocks the host, so they do
// not replace the bounded wait above: the host still waits for the NCCL
// stream with a Watchdog when a dead peer must become an error.
//
// # Threads
//
// CUDA's current device belongs to the OS thread. Lock the goroutine that
// drives a GPU with runtime.LockOSThread, call SetDevice, and create the
// communicator, buffers and streams from it.
//
// # Testing
//
// The tests load a fake libnccl.so.2 and libcudart.so built from C in
// internal/fakenccl (module root) at test time. The fakes stand for the absent
// GPU libraries: host memory as device memory, one rank (or several in
// separate processes meeting through files), a log of the arguments each
// call received (the events' records and waits included, in call order), and
// the failures the abort paths must survive (an enqueue
// that blocks until ncclCommAbort, ncclInProgress, an asynchronous error), so
// the tests cover the real dlopen, dlsym and trampoline path, the by-value
// unique id and the ncclConfig_t included. The real libraries
// are checked on a GPU machine with the nccl-check binary (cmd/nccl-check),
// which needs neither Go nor libtorch there:
//
//	CGO_ENABLED=1 go build -o nccl-check ./nccl/cmd/nccl-check
//	./nccl-check -nprocs 0   # on the GPU machine: one rank per GPU; PASS/FAIL
//	                         # lines, bus bandwidth, an abort check, a summary
package nccl
