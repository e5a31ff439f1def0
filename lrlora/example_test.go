package lrlora_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/phiop"
)

// An LR-LoRA adapter of rank 1 on a 2×3 frozen layer: its tensors, its parameter
// count r·(d_in + d_out) + 2K, and ΔW = 0 at initialisation.
func Example() {
	w0 := ts.MustOfSlice([]float32{1, 2, 3, 4, 5, 6}).MustReshape([]int64{2, 3}, true)
	defer w0.MustDrop()

	spec := adapter.Default() // LR-LoRA, K = 50; the target list is the caller's business
	spec.R = 1
	ad, err := lrlora.New("layer", w0, nil, spec, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ad.Close()

	for _, nt := range ad.Tensors() {
		fmt.Println(nt.Name, nt.Tensor.MustSize(), nt.Trainable)
	}
	n, _ := ad.NumParameters()
	fmt.Println("parameters:", n)

	dw, _ := ad.DeltaWeight()
	defer dw.MustDrop()
	fmt.Println("ΔW:", dw.Float64Values())
	// Output:
	// layer.lora_A [1 3] true
	// layer.lora_B [2 1] true
	// layer.phi.amplitude [50] true
	// layer.phi.bandwidth_raw [50] true
	// layer.phi.grid [50] false
	// parameters: 105
	// ΔW: [0 0 0 0 0 0]
}

// One optimizer step over three micro-batches with ΔW formed once: HoldDelta before
// the first, BackwardHeld after the last. φ's op runs one forward and one backward for
// the step instead of one of each per micro-batch.
func ExampleBackwardHeld() {
	w0 := ts.MustOfSlice([]float32{1, 2, 3, 4, 5, 6}).MustReshape([]int64{2, 3}, true)
	defer w0.MustDrop()
	spec := adapter.Default()
	spec.R = 1
	ad, err := lrlora.New("layer", w0, nil, spec, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ad.Close()

	before := phiop.Passes()
	if err := ad.HoldDelta(); err != nil {
		fmt.Println(err)
		return
	}
	for i := range 3 {
		x := ts.MustOfSlice([]float32{1, float32(i), -1}).MustReshape([]int64{1, 3}, true)
		y, _ := ad.Forward(x)
		loss := y.MustSum(y.DType(), true)
		_ = loss.Backward()
		loss.MustDrop()
		x.MustDrop()
	}
	if err := lrlora.BackwardHeld([]*lrlora.Adapter{ad}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("φ passes:", phiop.Passes()-before)
	g := ad.TrainableParameters()[2].Tensor.MustGrad(false) // φ's amplitudes: the only gradient at a = 0
	defer g.MustDrop()
	fmt.Println("amplitude gradient defined:", g.MustDefined())
	// Output:
	// φ passes: 2
	// amplitude gradient defined: true
}

// Two data-parallel ranks (here two copies of one adapter in one process) share the
// step's merged weight: the owner forms it into a slot, the other takes the values
// (a collective copies them in a trainer), each gathers its own gradient, and the
// owner alone runs φ's backward with the sum.
func ExampleAdapter_HoldReceived() {
	w0 := ts.MustOfSlice([]float32{1, 2, 3, 4, 5, 6}).MustReshape([]int64{2, 3}, true)
	defer w0.MustDrop()
	spec := adapter.Default()
	spec.R = 1
	var ranks [2]*lrlora.Adapter
	for i := range ranks {
		ad, err := lrlora.New("layer", w0, nil, spec, rand.New(rand.NewPCG(1, 2))) // the same values on both
		if err != nil {
			fmt.Println(err)
			return
		}
		defer ad.Close()
		ranks[i] = ad
	}
	n, dt := ranks[0].HeldSize()
	formed := ts.MustZeros([]int64{n}, dt, gotch.CPU)
	defer formed.MustDrop()
	received := ts.MustZeros([]int64{n}, dt, gotch.CPU)
	defer received.MustDrop()

	before := phiop.Passes()
	if err := ranks[0].HoldDeltaInto(formed); err != nil {
		fmt.Println(err)
		return
	}
	if err := tensorkit.CopyValues(received, formed); err != nil { // the exchange
		fmt.Println(err)
		return
	}
	if err := ranks[1].HoldReceived(received); err != nil {
		fmt.Println(err)
		return
	}
	var grads [2]*ts.Tensor
	for i, ad := range ranks {
		x := ts.MustOfSlice([]float32{1, float32(i), -1}).MustReshape([]int64{1, 3}, true)
		y, _ := ad.Forward(x)
		loss := y.MustSum(y.DType(), true)
		_ = loss.Backward()
		loss.MustDrop()
		x.MustDrop()
		grads[i], _ = ad.HeldGrad()
	}
	sum := grads[0].MustAdd(grads[1], true) // the collective's sum
	grads[1].MustDrop()
	defer sum.MustDrop()
	if err := lrlora.BackwardHeldWith(ranks[:], []*ts.Tensor{sum, nil}); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("φ passes on both ranks:", phiop.Passes()-before)
	g := ranks[0].TrainableParameters()[2].Tensor.MustGrad(false) // the owner's amplitude gradient
	defer g.MustDrop()
	fmt.Println("owner's amplitude gradient defined:", g.MustDefined())
	// Output:
	// φ passes on both ranks: 2
	// owner's amplitude gradient defined: true
}
