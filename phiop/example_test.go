package phiop_test

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"
	"runtime"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/phiop"
)

// Run: go test ./phiop/ -run Example
func Example() {
	runtime.LockOSThread() // libtorch's grad mode is per OS thread
	defer runtime.UnlockOSThread()

	m := ts.MustOfSlice([]float64{-1, 0, 0.5, 2})
	m = m.MustSetRequiresGrad(true, true)
	amplitude := ts.MustOfSlice([]float64{0.5, 1, -0.25})
	amplitude = amplitude.MustSetRequiresGrad(true, true)
	bandwidthRaw := ts.MustOfSlice([]float64{0.5413248546129181, 0.5413248546129181, 0.5413248546129181}) // b = 1
	bandwidthRaw = bandwidthRaw.MustSetRequiresGrad(true, true)
	grid := ts.MustOfSlice([]float64{-1, 0, 1})

	phi, err := phiop.Apply(m, amplitude, bandwidthRaw, grid, adapter.Sinc, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	loss := phi.MustSum(phi.DType(), false)
	if err := loss.Backward(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("phi    %.4f\n", phi.Float64Values())
	fmt.Printf("dL/da  %.4f\n", amplitude.MustGrad(false).Float64Values())

	for _, t := range []*ts.Tensor{m, amplitude, bandwidthRaw, grid, phi, loss} {
		t.MustDrop()
	}
	// Output:
	// phi    [0.5000 1.0000 0.3714 0.0000]
	// dL/da  [0.7878 1.6366 0.6366]
}
