// Command gotchadapt adapts gotch to the libtorch installed on this machine.
//
// gotch v0.9.1 is generated for libtorch 2.1. gotchadapt finds the libtorch to
// build against ($LIBTORCH, else the torch package python3 imports, else Debian's
// libtorch-dev: detect.go), copies gotch out of the Go module cache (which it never
// edits) into .build/gotch, rewrites the cgo flags of libtch/lib.go for that
// libtorch (include dirs, C++ ABI and standard, libraries kept with --no-as-needed,
// libtorch_cuda when present), and replaces the body of every C wrapper that does
// not compile against it with a runtime error naming the op and the libtorch
// version. It writes phiop's cgo flags from the same detection (phiop/cgo_libtorch.go)
// and go.work so the build uses the copy.
//
// The result is cached: a stamp records a hash of every input (gotch version and
// sum, the generated flags, this tool's version) and nothing is redone while the
// inputs are unchanged.
//
//	go run ./tools/gotchadapt            # adapt (or confirm the cache)
//	go run ./tools/gotchadapt -detect    # print what was found and exit (1: nothing)
//	go run ./tools/gotchadapt -print-env # print the flags make-style and exit
package main
