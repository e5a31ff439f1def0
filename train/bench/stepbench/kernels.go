package main

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/bench/flops"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/phiop"
)

// The kernel-time model puts a time, not a FLOP count, on each part of a step that the
// FLOP model counts: every product of an adapted projection timed alone at the step's
// shapes (as -gemms does), and LR-LoRA's per-step ΔW work — M = B·A, φ forward, W0 +
// ΔW, φ's fused backward, ∂B and ∂A: lrlora's HoldDelta and the backward of the held
// weight — timed alone on one adapter of each projection shape, from the children's
// start (B = 0, so φ runs its K terms) or their -spread adapter (φ tabulated).
// Attention and the head, the same work in both methods, are counted at the frozen
// products' measured FLOP rate. The model's ratio is LR-LoRA's sum over LoRA's: the
// step-time ratio if each kernel ran in the step as fast as it does alone and nothing
// else took time. Where the measured ratio sits at or below it, LR-LoRA's step loses
// nothing beyond its kernels' own speed (the uncounted work, the same in both steps,
// pulls the measured ratio towards 1); above it is time that LR-LoRA spends outside
// those kernels.

// kernelParts are one method's per-step seconds in the kernel-time model.
type kernelParts struct {
	frozen, lora, gtx, delta, shared float64
	ok                               bool // measured (the model ran)
}

// bound is LR-LoRA's modelled step over LoRA's.
func (k kernelParts) bound() float64 { return k.total("lrlora") / k.total("lora") }

// beyond prints what each method's median step took beyond its kernels' modelled time,
// and LR-LoRA's excess over LoRA's: time LR-LoRA spends outside its kernels that LoRA
// does not (its d_out×d_in passes that the model leaves out, dispatch, waiting). The
// uncounted work both steps share (norms, attention's softmax, the optimizer, ...)
// cancels in the difference.
func (k kernelParts) beyond(loraMedian, lrloraMedian float64) {
	lo, lr := loraMedian-k.total("lora"), lrloraMedian-k.total("lrlora")
	fmt.Printf("beyond the kernels (median step − kernel-time model): lora %.3fs, lrlora %.3fs; lrlora's excess %.3fs\n", lo, lr, lr-lo)
}

// total is one step's modelled time for method m.
func (k kernelParts) total(m string) float64 {
	if m == "lora" {
		return k.frozen + k.lora + k.shared
	}
	return k.frozen + k.gtx + k.delta + k.shared
}

// kernelModel times the parts at t tokens per micro-batch, accum micro-batches per step,
// and prints the model's line.
func kernelModel(c flops.Config, b flops.Batch, spread float64) (kernelParts, error) {
	t := int64(b.B * b.T)
	tab0, passes0 := phiop.TabulatedCalls(), phiop.Passes()
	var k kernelParts
	var frozenFLOP float64
	for _, p := range projections(c) {
		both, lora, lrl := projectionOps(t, p.din, p.dout, int64(c.R))
		for _, g := range []struct {
			ops       []gemmOp
			add, flop *float64 // seconds, and FLOPs where the rate is wanted
		}{{both, &k.frozen, &frozenFLOP}, {lora, &k.lora, nil}, {lrl[:1], &k.gtx, nil}} { // lrl[0]: Gᵀ·x; the rest are in ΔW's work
			for _, op := range g.ops {
				s, err := timeGEMM(op)
				if err != nil {
					return kernelParts{}, err
				}
				n := float64(p.count)
				if strings.HasPrefix(op.name, "∂x") {
					n = float64(p.withGrad)
				}
				*g.add += s * n * float64(b.Accum)
				if g.flop != nil {
					*g.flop += 2 * float64(op.m*op.k*op.n) * n * float64(b.Accum)
				}
			}
		}
		s, err := timeDelta(p.din, p.dout, c.R, spread)
		if err != nil {
			return kernelParts{}, err
		}
		k.delta += s * float64(p.count) // once per optimizer step (model.delta_per_step)
	}
	lo, err := flops.Step(c, b, flops.LoRA)
	if err != nil {
		return kernelParts{}, fmt.Errorf("stepbench: FLOP model: %w", err)
	}
	k.shared = (lo.Attention + lo.Head) / (frozenFLOP / k.frozen)
	k.ok = true
	tab, passes := phiop.TabulatedCalls()-tab0, phiop.Passes()-passes0
	ratio := k.bound()
	phiState := fmt.Sprintf("from B = 0, %d of %d φ passes tabulated", tab, passes)
	if spread > 0 {
		phiState = fmt.Sprintf("B ~ N(0, %g²), %d of %d φ passes tabulated", spread, tab, passes)
	}
	fmt.Printf("kernel-time model (s per step, each kernel timed alone, median of 5 rounds): lora %.3f = frozen GEMMs %.3f "+
		"+ rank-%d GEMMs %.3f + attention and head %.3f; lrlora %.3f = frozen GEMMs %.3f + Gᵀ·x %.3f + ΔW's work %.3f "+
		"(B·A, φ, W0 + ΔW, φ backward, ∂B, ∂A; %s) + attention and head %.3f; bound lrlora/lora ×%.3f\n",
		k.total("lora"), k.frozen, c.R, k.lora, k.shared, k.total("lrlora"), k.frozen, k.gtx, k.delta, phiState, k.shared, ratio)
	return k, nil
}

// timeDelta returns the median seconds of one d_in→d_out LR-LoRA adapter's per-step ΔW
// work (HoldDelta, then the backward of the held weight with a gradient), in training
// mode with the default spec at rank r: from B = 0 with amplitudes as after a first
// step (a ≠ 0, as the children's φ runs from step 2 on), or with spread > 0 from the
// -spread adapter.
func timeDelta(din, dout int64, r int, spread float64) (float64, error) {
	w0, err := ts.Randn([]int64{dout, din}, gotch.Float, gotch.CPU)
	if err != nil {
		return 0, fmt.Errorf("stepbench: ΔW's work: %w", err)
	}
	defer w0.Drop()
	spec := adapter.Default()
	spec.R = r
	ad, err := lrlora.New("layers.0.proj", w0, nil, spec, rand.New(rand.NewPCG(3, 5)))
	if err != nil {
		return 0, fmt.Errorf("stepbench: ΔW's work: %w", err)
	}
	defer ad.Close()
	ad.Train(true)
	var init func([]param.Tensor) error
	if spread > 0 {
		init = spreadInit(spread)
	} else {
		init = amplitudesOnly(1e-3)
	}
	if err := init(ad.Tensors()); err != nil {
		return 0, err
	}
	g, err := ts.Randn([]int64{dout, din}, gotch.Float, gotch.CPU)
	if err != nil {
		return 0, fmt.Errorf("stepbench: ΔW's work: %w", err)
	}
	defer g.Drop()
	return timeMedian(func() error {
		if err := ad.HoldDelta(); err != nil {
			return fmt.Errorf("stepbench: ΔW's work %d→%d: %w", din, dout, err)
		}
		if err := lrlora.BackwardHeldWith([]*lrlora.Adapter{ad}, []*ts.Tensor{g}); err != nil {
			return fmt.Errorf("stepbench: ΔW's work %d→%d: %w", din, dout, err)
		}
		return nil
	})
}

// amplitudesOnly draws the φ amplitudes from N(0, std²) and leaves B = 0: the state of
// a run from the default start after its first step, when a has had a gradient and B
// has not moved.
func amplitudesOnly(std float64) func([]param.Tensor) error {
	return func(params []param.Tensor) error {
		rng := rand.New(rand.NewPCG(13, 17))
		for _, p := range params {
			if strings.HasSuffix(p.Name, "phi.amplitude") {
				if err := tensorkit.FillNormal(p.Tensor, rng, std); err != nil {
					return fmt.Errorf("stepbench: %s: %w", p.Name, err)
				}
			}
		}
		return nil
	}
}
