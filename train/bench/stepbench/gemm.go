package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/lrtrain/lrtrain/bench/flops"
	"github.com/lrtrain/lrtrain/phiop"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// The -gemms mode times, alone, each matrix product an adapted projection's step runs
// (both methods), at the model's shapes and -batch × -seq tokens, and sums them over the
// model's projections: the GEMM time each method's adapted projections need per step if
// every product ran as fast as it does alone. Set against the FLOP model, it shows
// which products run far below sgemm's rate: LoRA's rank-r products move r columns
// through a T×d operand, so their time is memory traffic and call overhead, not FLOPs.

// gemmOp is one product of a projection's step: (m×k)·(k×n), counted per projection.
type gemmOp struct {
	name    string
	m, k, n int64
}

// projectionOps returns the products of one adapted d_in→d_out projection over t tokens,
// rank r: the frozen W's forward and ∂x (both methods; LR-LoRA's forward uses the merged
// W0 + ΔW, the same shape), LoRA's six rank-r products, and LR-LoRA's Gᵀ·x, B·A, ∂B, ∂A.
func projectionOps(t, din, dout, r int64) (both, lora, lrlora []gemmOp) {
	both = []gemmOp{{"x·Wᵀ", t, din, dout}, {"∂x = G·W", t, dout, din}}
	lora = []gemmOp{{"x·Aᵀ", t, din, r}, {"h·Bᵀ", t, r, dout}, {"∂h = G·B", t, dout, r},
		{"∂B = Gᵀ·h", dout, t, r}, {"∂A = ∂hᵀ·x", r, t, din}, {"∂x += ∂h·A", t, r, din}}
	lrlora = []gemmOp{{"Gᵀ·x", dout, t, din}, {"B·A", dout, r, din}, {"∂B = ∂ΔW·Aᵀ", dout, din, r},
		{"∂A = Bᵀ·∂ΔW", r, dout, din}}
	return both, lora, lrlora
}

// timeGEMM returns the median seconds of one (m×k)·(k×n) float32 product over rounds of
// at least 50 ms each.
func timeGEMM(op gemmOp) (float64, error) {
	a, err := ts.Randn([]int64{op.m, op.k}, gotch.Float, gotch.CPU)
	if err != nil {
		return 0, fmt.Errorf("stepbench: %s operand: %w", op.name, err)
	}
	defer a.Drop()
	b, err := ts.Randn([]int64{op.k, op.n}, gotch.Float, gotch.CPU)
	if err != nil {
		return 0, fmt.Errorf("stepbench: %s operand: %w", op.name, err)
	}
	defer b.Drop()
	return timeMedian(func() error {
		c, err := a.Mm(b, false)
		if err != nil {
			return fmt.Errorf("stepbench: %s: %w", op.name, err)
		}
		c.Drop()
		return nil
	})
}

// timeMedian returns the median seconds of one call of f over 5 rounds of at least
// 50 ms each, after 3 calls that warm up and set the rounds' length.
func timeMedian(f func() error) (float64, error) {
	run := func(n int) (float64, error) {
		begin := time.Now()
		for range n {
			if err := f(); err != nil {
				return 0, err
			}
		}
		return time.Since(begin).Seconds() / float64(n), nil
	}
	per, err := run(3)
	if err != nil {
		return 0, err
	}
	n := max(3, int(0.05/max(per, 1e-9)))
	var rounds []float64
	for range 5 {
		s, err := run(n)
		if err != nil {
			return 0, err
		}
		rounds = append(rounds, s)
	}
	return median(rounds), nil
}

// projection is one adapted projection shape of the model: count of them per step, and
// how many of those have an input that needs a gradient (layer 0's q, k, v do not: the
// embedding is frozen, as bench/flops counts it).
type projection struct {
	din, dout       int64
	count, withGrad int
}

// projections returns the small Llama's seven projections over c.Layers layers.
func projections(c flops.Config) []projection {
	hd := int64(c.Hidden / c.Heads)
	h, kv, in, l := int64(c.Hidden), int64(c.KVHeads)*hd, int64(c.Intermediate), c.Layers
	return []projection{
		{h, int64(c.Heads) * hd, l, l - 1}, // q_proj
		{h, kv, 2 * l, 2 * (l - 1)},        // k_proj, v_proj
		{int64(c.Heads) * hd, h, l, l},     // o_proj
		{h, in, 2 * l, 2 * l},              // gate_proj, up_proj
		{in, h, l, l},                      // down_proj
	}
}

// runGEMMs prints each product's time and FLOP rate for every projection shape of c at
// t tokens, then each method's sums over the model's adapted projections.
func runGEMMs(c flops.Config, t int64) error {
	fmt.Printf("GEMMs alone, %d tokens, rank %d, %d threads (median of 5 rounds of ≥ 50 ms)\n", t, c.R, phiop.InitThreads())
	fmt.Printf("%-10s %-14s %20s %10s %10s %9s\n", "shape", "product", "m×k·k×n", "MFLOP", "µs", "GFLOP/s")
	type total struct{ flop, s float64 }
	sum := map[string]total{} // method → its adapted projections' GEMMs per step
	for _, p := range projections(c) {
		both, lora, lrlora := projectionOps(t, p.din, p.dout, int64(c.R))
		for _, g := range []struct {
			ops     []gemmOp
			methods []string
		}{{both, []string{"lora", "lrlora"}}, {lora, []string{"lora"}}, {lrlora, []string{"lrlora"}}} {
			for _, op := range g.ops {
				s, err := timeGEMM(op)
				if err != nil {
					return err
				}
				f := 2 * float64(op.m*op.k*op.n)
				fmt.Printf("%-10s %-14s %20s %10.2f %10.1f %9.1f\n", fmt.Sprintf("%d→%d", p.din, p.dout), op.name,
					fmt.Sprintf("%d×%d·%d×%d", op.m, op.k, op.k, op.n), f/1e6, s*1e6, f/s/1e9)
				n := float64(p.count)
				if strings.HasPrefix(op.name, "∂x") {
					n = float64(p.withGrad)
				}
				for _, m := range g.methods {
					sum[m] = total{sum[m].flop + f*n, sum[m].s + s*n}
				}
			}
		}
	}
	lo, lr := sum["lora"], sum["lrlora"]
	for _, m := range []struct {
		name string
		t    total
	}{{"lora", lo}, {"lrlora", lr}} {
		fmt.Printf("%s: adapted projections' GEMMs %.2f GFLOP in %.3f s alone, %.1f GFLOP/s\n",
			m.name, m.t.flop/1e9, m.t.s, m.t.flop/m.t.s/1e9)
	}
	fmt.Printf("lrlora/lora over these GEMMs: FLOPs ×%.3f, time alone ×%.3f\n", lr.flop/lo.flop, lr.s/lo.s)
	return nil
}
