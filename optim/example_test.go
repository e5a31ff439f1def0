package optim_test

import (
	"fmt"
	"runtime"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/optim"
)

// One AdamW step on L = Σ 3·w after clipping the gradient's norm to 1. The first
// step of Adam moves every coordinate by lr (up to ε) against the gradient's sign.
func Example() {
	runtime.LockOSThread() // libtorch's grad mode is per OS thread
	defer runtime.UnlockOSThread()

	w := ts.MustOfSlice([]float64{1, -1}).MustSetRequiresGrad(true, true)
	defer w.MustDrop()
	params := []ts.NamedTensor{{Name: "w", Tensor: w}}
	opt, err := optim.NewAdamW(params, optim.AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer opt.Close()

	loss := w.MustMulScalar(ts.FloatScalar(3), false).MustSum(w.DType(), true)
	loss.MustBackward()
	loss.MustDrop()
	total, _ := optim.ClipGradNorm(params, 1)
	_ = opt.Step(0.1)

	st, _, _ := opt.State("w")
	fmt.Printf("grad norm %.4f, step %d, w = %.4f\n", total, st.Step, w.Float64Values())
	// Output:
	// grad norm 4.2426, step 1, w = [0.9000 -1.1000]
}
