// Package e2e holds lrtrain's end-to-end distributed tests: they build the lrtrain
// binary once (TestMain) and drive `lrtrain launch` and `lrtrain train` as real
// processes on a tiny Llama, checking data-parallel equivalence, recovery from a killed
// worker, resuming with another world size, and the loss of the rendezvous etcd.
//
// The package has no API; it is only tests and their helpers:
//
//	go test ./train/e2e -v
//
// The tiny runs use float32 (the configuration accepts float32 and bfloat16 only), so
// runs that sum gradients in a different order are compared within a stated tolerance;
// runs that only differ by an interruption are compared bit for bit.
package e2e
