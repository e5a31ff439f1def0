// Package testkit holds what many of the repository's tests share, so that each
// exists once. It is imported by tests only (it imports package testing); no
// package of the trainer may import it or its subpackages.
//
//   - testkit (this package): WaitFor, a poll of a condition whose deadline is
//     only a failure bound, for tests that wait on an event they cannot be told of
//     (a file appearing, a process ending); Within, a call run on a goroutine that
//     fails the test if it has not returned after a bound; NoGoroutinesLeft, a leak
//     check against the goroutine count at a test's start; DirNames, a directory's
//     entry names; ShortReason, the one spelling of a -short skip; and RefusingAddr,
//     a loopback address that refuses connections and that no other process can
//     take while the test runs (a port "freed" by closing a listener can be taken by
//     another test binary before the test dials it).
//   - etcdtest: the real embedded etcd server (package dist/etcdembed) on free
//     loopback ports, with its data in t.TempDir(), stopped when the test ends.
//   - tinymodel: a small model in the Hugging Face layout (package model/hfinit:
//     config.json, model.safetensors, tokenizer files) written from given options,
//     into a test's temporary directory or once per test binary.
//   - tensortest: a tensor's values as float64 and values set in place (both
//     through internal/tensorkit), a model's logits on one fixed padded batch, and
//     the largest difference of two value lists.
//   - childproc: the re-execution of the test binary as a child process that runs
//     a named function instead of the tests (a training rank, a shard rank, a
//     collective rank), with the test's own environment passed through.
//
// The subpackages are separate so that a test linking one does not link the others'
// dependencies (etcd's server is large; the model writer needs libtorch).
//
// Under -short (make test-short) the tests that start processes, an etcd server or a
// whole training run skip, as do the long numeric comparisons; each says so with
//
//	if testing.Short() {
//		t.Skip(testkit.ShortReason("multi-process"))
//	}
//
// or the same message written out. The full suite (no -short) runs every test.
package testkit
