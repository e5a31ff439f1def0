// Package grad switches libtorch's grad mode for a function call.
//
// libtorch keeps grad mode per OS thread and goroutines move between threads,
// so NoGrad pins the goroutine for the call (runtime.LockOSThread nests: a
// caller that pinned itself stays pinned) and restores the previous mode on
// the same thread afterwards. It relies on gotch's GradSetEnabled returning the
// previous mode, which tools/gotchadapt fixes in the adapted gotch build.
//
//	err := grad.NoGrad(func() error {
//		// in-place parameter updates, evaluation, merging …
//		return nil
//	})
package grad

import (
	"fmt"
	"runtime"

	"github.com/sugarme/gotch/ts"
)

// NoGrad runs fn with grad mode off and restores the previous mode.
func NoGrad(fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, err := ts.GradSetEnabled(false)
	if err != nil {
		return fmt.Errorf("grad: disable: %w", err)
	}
	defer ts.GradSetEnabled(prev)
	return fn()
}

// Enabled reports whether grad mode is on for the calling OS thread. The
// answer is only meaningful to a goroutine pinned with runtime.LockOSThread.
func Enabled() (bool, error) {
	prev, err := ts.GradSetEnabled(true)
	if err != nil {
		return false, fmt.Errorf("grad: query: %w", err)
	}
	if _, err := ts.GradSetEnabled(prev); err != nil {
		return false, fmt.Errorf("grad: restore: %w", err)
	}
	return prev, nil
}
