// Package fakenccl builds stand-ins for libnccl.so.2 and libcudart.so from
// the C sources in its testdata, for tests on machines without a GPU. Host
// memory stands for device memory. With one rank every collective is a
// copy; ranks in separate processes (or separate communicators of one
// process) meet through files under FAKE_NCCL_SHARED_DIR and compute the
// real results. The fake libnccl also stages the failures that the abort
// paths must survive: a collective that blocks until ncclCommAbort (or for
// good), ncclInProgress from a non-blocking communicator's init or
// collective, an asynchronous error, and an older version without
// non-blocking communicators. The fake libcudart's events log each record
// and stream wait (as the fake libnccl logs its collectives) so that tests
// see the order of the device work. See the comments at the top of each C file
// for the behaviour and the environment knobs.
//
// They stand for the absent GPU libraries only: they check the arguments,
// the by-value unique id and the ncclConfig_t that cross the trampolines,
// not NCCL's transports or speed; the nccl package's real path is checked
// on a GPU machine with nccl/cmd/nccl-check.
package fakenccl
