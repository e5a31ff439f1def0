package train

import (
	"context"
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Data parallelism. Every rank holds the same adapters; each optimizer step the
// gradients of the trainable parameters are copied into one flat float64 bucket,
// all-reduced (sum) once, and copied back. Each rank's gradients are already divided
// by the step's global target count (summed over micro-batches and ranks), so the sum
// is the gradient of the global mean loss. A group of size 1 skips the copies: the
// reduction over one rank is the identity.

// allReduceGrads sums the gradients of params (on dev) across the group's ranks, in
// place: on the device when the group can reduce device memory (allReduceFlat), else
// through a float64 host bucket.
func allReduceGrads(ctx context.Context, g collective.ProcessGroup, params []ts.NamedTensor, dev gotch.Device) error {
	if g.Size() == 1 {
		return nil
	}
	if r, ok := useFlat(g, dev); ok {
		return allReduceFlat(ctx, r, params, dev, g.Rank())
	}
	grads, err := gradsOf(params, g.Rank())
	defer dropAll(grads)
	if err != nil {
		return err
	}
	hosts := make([]hostTensor, len(params))
	var n int
	for i, p := range params {
		grad := grads[i]
		if hosts[i], err = readHost(p.Name, grad); err != nil {
			return fmt.Errorf("train: gradient: %w", err)
		}
		n += len(hosts[i].data) / hosts[i].dtype.Size()
	}
	bucket := make([]float64, 0, n)
	for _, h := range hosts {
		bucket = appendFloats(bucket, h)
	}
	if err := g.AllReduceFloat64(ctx, bucket, collective.Sum); err != nil {
		return fmt.Errorf("train: all-reduce gradients: %w", err)
	}
	for i, h := range hosts {
		bucket = takeFloats(bucket, h)
		if err := writeInto(grads[i], h); err != nil {
			return fmt.Errorf("train: write reduced gradient: %w", err)
		}
	}
	return nil
}

// gradsOf returns the gradient of every parameter (drop them with dropAll, also after
// an error), failing for one that has none.
func gradsOf(params []ts.NamedTensor, rank int) ([]*ts.Tensor, error) {
	grads := make([]*ts.Tensor, 0, len(params))
	for _, p := range params {
		grad, err := p.Tensor.Grad(false)
		if err != nil {
			return grads, fmt.Errorf("train: gradient of %s: %w", p.Name, err)
		}
		grads = append(grads, grad)
		if ok, err := grad.Defined(); err != nil || !ok {
			return grads, fmt.Errorf("train: %s has no gradient on rank %d (%v)", p.Name, rank, err)
		}
	}
	return grads, nil
}

func dropAll(list []*ts.Tensor) {
	for _, t := range list {
		t.Drop()
	}
}

// broadcastParams makes every rank's trainable tensors (buffers included) equal to rank
// 0's, bit for bit: their bytes, concatenated, are broadcast from rank 0 in one call.
func broadcastParams(ctx context.Context, g collective.ProcessGroup, list []lrlora.NamedTensor) error {
	if g.Size() == 1 {
		return nil
	}
	hosts := make([]hostTensor, len(list))
	var bucket []byte
	for i, p := range list {
		h, err := readHost(p.Name, p.Tensor)
		if err != nil {
			return fmt.Errorf("train: broadcast: %w", err)
		}
		hosts[i] = h
		bucket = append(bucket, h.data...)
	}
	if err := g.Broadcast(ctx, bucket, 0); err != nil {
		return fmt.Errorf("train: broadcast initial adapters: %w", err)
	}
	for i, p := range list {
		bucket = bucket[copy(hosts[i].data, bucket):]
		if err := writeInto(p.Tensor, hosts[i]); err != nil {
			return fmt.Errorf("train: broadcast: %w", err)
		}
	}
	return nil
}

// sumAcrossRanks all-reduces a few float64 counters (loss sums, token counts).
func sumAcrossRanks(ctx context.Context, g collective.ProcessGroup, vals []float64) error {
	if g.Size() == 1 {
		return nil
	}
	if err := g.AllReduceFloat64(ctx, vals, collective.Sum); err != nil {
		return fmt.Errorf("train: all-reduce metrics: %w", err)
	}
	return nil
}

// appendFloats appends h's values (F32 or F64) to b as float64.
func appendFloats(b []float64, h hostTensor) []float64 {
	if h.dtype == safetensors.F64 {
		return append(b, float64View(h.data)...)
	}
	for _, v := range float32View(h.data) {
		b = append(b, float64(v))
	}
	return b
}

// takeFloats overwrites h's values with the first values of b and returns the rest.
func takeFloats(b []float64, h hostTensor) []float64 {
	if h.dtype == safetensors.F64 {
		dst := float64View(h.data)
		return b[copy(dst, b):]
	}
	dst := float32View(h.data)
	for i := range dst {
		dst[i] = float32(b[i])
	}
	return b[len(dst):]
}
