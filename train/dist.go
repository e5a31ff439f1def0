package train

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Data parallelism. Every rank holds the same adapters; each optimizer step the
// gradients of the trainable parameters are summed across ranks in place with one
// all-reduce. Each rank's gradients are already divided by the step's global target
// count (summed over micro-batches and ranks), so the sum is the gradient of the global
// mean loss. A group of size 1 skips it: the reduction over one rank is the identity.
//
// There are two paths. A group that reduces memory in place (collective.RawAllReducer:
// Gloo on host memory, NCCL on CUDA memory, see deviceReducer) gets the gradients
// concatenated into one flat tensor on their device and reduced there with one call
// (allReduceFlat): on the CPU, one copy of the gradients in and one out, and no host
// read of any tensor. Any other group gets a float64 host bucket (allReduceHost), filled
// with one host read per gradient. For two ranks both sum each element exactly once in
// float32 (correctly rounded; the float64 sum of two float32 values rounds to the same
// float32), so they give the same bits.

// allReduce sums the gradients, then the counters in sums (loss sum, tokens), across
// the group's ranks.
func (r *run) allReduce(ctx context.Context, sums []float64) error {
	if r.g.Size() > 1 {
		var err error
		dev := r.m.Device()
		if red, ok := useFlat(r.g, dev, r.env.seams.hostGrads); ok {
			err = allReduceFlat(ctx, red, r.trainable, dev, r.rank)
		} else {
			err = allReduceHost(ctx, r.g, r.trainable)
		}
		if err != nil {
			return err
		}
	}
	return sumAcrossRanks(ctx, r.g, sums)
}

// groupFailed reports whether err comes from a collective that failed because the group
// did (a peer lost, a timeout, an abort or cancellation, a group broken or closed
// before), rather than from bad input.
func groupFailed(err error) bool {
	for _, e := range []error{collective.ErrPeerLost, collective.ErrTimeout, collective.ErrAborted,
		collective.ErrBroken, collective.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// deviceReducer is a group that reduces CUDA memory in place (ncclpg.Group): Device is
// the CUDA device its communicator drives.
type deviceReducer interface {
	collective.RawAllReducer
	Device() int
}

// useFlat reports whether gradients on dev go through allReduceFlat with g: on a GPU,
// with a group that reduces device memory on that GPU; on the CPU, with a group that
// reduces host memory in place (Gloo), unless a test asks for the host bucket (hostCPU).
func useFlat(g collective.ProcessGroup, dev gotch.Device, hostCPU bool) (collective.RawAllReducer, bool) {
	if dev.IsCuda() {
		r, ok := g.(deviceReducer)
		if ok && r.Device() != dev.Value && gotch.CUDA.DeviceCount() > 1 {
			return nil, false // a communicator on another GPU: reduce through the host
		}
		return r, ok
	}
	r, ok := g.(collective.RawAllReducer)
	return r, ok && !hostCPU
}

// allReduceHost sums the gradients of params across ranks through one float64 host
// bucket.
func allReduceHost(ctx context.Context, g collective.ProcessGroup, params []ts.NamedTensor) error {
	grads, err := gradsOf(params, g.Rank())
	defer dropAll(grads)
	if err != nil {
		return err
	}
	hosts := make([]hostTensor, len(params))
	var n int
	for i, p := range params {
		if hosts[i], err = readHost(p.Name, grads[i]); err != nil {
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

// allReduceFlat sums the gradients of params across ranks in place with one raw
// all-reduce: the gradients (all of one dtype) are concatenated into one flat tensor on
// their device, reduced there and copied back.
func allReduceFlat(ctx context.Context, red collective.RawAllReducer, params []ts.NamedTensor, dev gotch.Device, rank int) error {
	grads, err := gradsOf(params, rank)
	defer dropAll(grads)
	if err != nil || len(grads) == 0 {
		return err
	}
	dt, err := flatDType(params, grads)
	if err != nil {
		return err
	}
	return tensorkit.NoGrad(func() error {
		b, err := concatGrads(grads, dt)
		if err != nil {
			return err
		}
		defer b.flat.Drop()
		if err := b.reduce(ctx, red, dev); err != nil {
			return err
		}
		return b.scatter(grads, params)
	})
}

// flatDType is the collective dtype of the gradients, which must all have one, float32
// or float64.
func flatDType(params []ts.NamedTensor, grads []*ts.Tensor) (collective.DType, error) {
	dt := grads[0].DType()
	for i, grad := range grads {
		if grad.DType() != dt {
			return 0, fmt.Errorf("train: gradients of %s (%v) and %s (%v) differ in dtype", params[0].Name, dt, params[i].Name, grad.DType())
		}
	}
	if cdt, ok := reducible(dt); ok {
		return cdt, nil
	}
	return 0, fmt.Errorf("train: all-reduce gradients: dtype %v (want float32 or float64)", dt)
}

// reducible maps a tensor dtype to the collectives' reducible dtype, if it has one.
func reducible(dt gotch.DType) (collective.DType, bool) {
	switch dt {
	case gotch.Float:
		return collective.Float32, true
	case gotch.Double:
		return collective.Float64, true
	}
	return 0, false
}

// flatBucket is the gradients concatenated: flat holds n elements of dtype, sizes[i]
// of them gradient i's.
type flatBucket struct {
	flat  *ts.Tensor
	sizes []int64
	n     int64
	dtype collective.DType
}

// concatGrads concatenates the flattened gradients into one tensor on their device.
func concatGrads(grads []*ts.Tensor, dt collective.DType) (flatBucket, error) {
	b := flatBucket{sizes: make([]int64, len(grads)), dtype: dt}
	views := make([]*ts.Tensor, 0, len(grads))
	defer func() { dropAll(views) }()
	for i, g := range grads {
		v, err := g.Reshape([]int64{-1}, false)
		if err != nil {
			return b, fmt.Errorf("train: flatten gradient: %w", err)
		}
		views = append(views, v)
		shape, err := v.Size()
		if err != nil {
			return b, fmt.Errorf("train: gradient bucket: %w", err)
		}
		b.sizes[i] = shape[0]
		b.n += shape[0]
	}
	flat, err := ts.Cat(views, 0)
	if err != nil {
		return b, fmt.Errorf("train: concatenate gradients: %w", err)
	}
	b.flat = flat
	return b, nil
}

// reduce sums the bucket across ranks in place, ordered on a GPU as onDevice says: the
// all-reduce after the kernels that wrote the bucket, the kernels that read it
// (scatter, the optimizer) after the all-reduce.
func (b flatBucket) reduce(ctx context.Context, red collective.RawAllReducer, dev gotch.Device) error {
	ptr, err := b.flat.DataPtr()
	if err != nil {
		return fmt.Errorf("train: gradient bucket: %w", err)
	}
	var ordered func() error
	if ord, ok := red.(collective.StreamOrderedAllReducer); ok {
		ordered = func() error {
			return ord.AllReduceRawOrdered(ctx, ptr, int(b.n), b.dtype, collective.Sum, collective.DefaultStream)
		}
	}
	err = onDevice(dev, ordered, func() error { return red.AllReduceRaw(ctx, ptr, int(b.n), b.dtype, collective.Sum) })
	if err != nil {
		return fmt.Errorf("train: all-reduce gradients: %w", err)
	}
	return nil
}

// onDevice runs a collective on memory of dev. On a GPU the group's collective runs on
// its own stream: ordered, the group's stream-ordered variant (ncclpg; nil when the
// group has none), orders it by CUDA events after the work queued on libtorch's stream
// (collective.DefaultStream) and before what is queued there later, with no
// device-wide synchronisation; the host then waits only for the collective itself,
// bounded by the group's timeout, which also guarantees the group's stream is done
// with the memory before libtorch's caching allocator (unaware of that stream) may
// hand it out again. Without it the device is synchronised first, then plain runs. On
// the CPU plain runs.
func onDevice(dev gotch.Device, ordered, plain func() error) error {
	switch {
	case dev.IsCuda() && ordered != nil:
		return ordered()
	case dev.IsCuda():
		if err := synchronizeDevice(dev); err != nil {
			return fmt.Errorf("synchronise %v before the collective: %w", dev, err)
		}
	}
	return plain()
}

// deviceSyncs counts synchronizeDevice calls, so that tests can check that the step path
// makes none.
var deviceSyncs atomic.Int64

// synchronizeDevice waits for every kernel on every stream of dev (a host stall).
func synchronizeDevice(dev gotch.Device) error {
	deviceSyncs.Add(1)
	return ts.CudaSynchronize(dev.Value)
}

// scatter copies the reduced bucket back into the gradients.
func (b flatBucket) scatter(grads []*ts.Tensor, params []ts.NamedTensor) error {
	var off int64
	for i, g := range grads {
		part, err := b.flat.Narrow(0, off, b.sizes[i], false)
		if err != nil {
			return fmt.Errorf("train: split the reduced gradients: %w", err)
		}
		off += b.sizes[i]
		shaped, err := part.ViewAs(g, true)
		if err != nil {
			return fmt.Errorf("train: split the reduced gradients: %w", err)
		}
		out, err := g.CopyOut(g, shaped, false, false)
		shaped.Drop()
		if err == nil {
			err = out.Drop()
		}
		if err != nil {
			return fmt.Errorf("train: write the reduced gradient of %s: %w", params[i].Name, err)
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
func broadcastParams(ctx context.Context, g collective.ProcessGroup, list []param.Tensor) error {
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
