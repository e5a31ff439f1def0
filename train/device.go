package train

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/phiop"
)

// GPU training. The model, the adapters, the batches and the optimizer state live on the
// device train.device names; checkpoints, metrics and the host-side collectives copy to
// and from it. Gradients of GPU ranks are reduced in place on the device by a group that
// can (NCCL, see deviceReducer); any other group gets host copies (allReduceGrads).

// ResolveDevice turns a train.device value into a libtorch device: "" or "auto" is the
// worker's GPU when libtorch sees one and the CPU otherwise; "cuda" is the worker's GPU;
// "cuda:N" is GPU N. The worker's GPU is cuda:0 when one GPU is visible (lrtrain launch
// gives each worker one through CUDA_VISIBLE_DEVICES) and cuda:<localRank> when the
// worker sees several (a torchrun-style launch).
func ResolveDevice(spec string, localRank int) (gotch.Device, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "auto" {
		if !gotch.CUDA.IsAvailable() {
			return gotch.CPU, nil
		}
		spec = "cuda"
	}
	if spec == "cpu" {
		return gotch.CPU, nil
	}
	idx, indexed := strings.CutPrefix(spec, "cuda:")
	if spec != "cuda" && !indexed {
		return gotch.CPU, fmt.Errorf("%w: train.device %q: want auto, cpu, cuda or cuda:N", ErrConfig, spec)
	}
	n := int(gotch.CUDA.DeviceCount())
	if n == 0 {
		return gotch.CPU, fmt.Errorf("%w: train.device %s: the linked libtorch sees no CUDA device "+
			"(a CPU build, or no GPU visible: check CUDA_VISIBLE_DEVICES and `lrtrain env`)", ErrConfig, spec)
	}
	i := 0
	switch {
	case indexed:
		v, err := strconv.Atoi(idx)
		if err != nil || v < 0 {
			return gotch.CPU, fmt.Errorf("%w: train.device %q: want auto, cpu, cuda or cuda:N", ErrConfig, spec)
		}
		i = v
	case n > 1:
		i = localRank
	}
	if i >= n {
		return gotch.CPU, fmt.Errorf("%w: train.device %s: GPU %d of %d visible (local rank %d)", ErrConfig, spec, i, n, localRank)
	}
	return gotch.CudaBuilder(uint(i)), nil
}

// checkDevice rejects a GPU run that this build cannot do: the fused φ op needs its CUDA
// kernels (the `cuda` build tag) for LR-LoRA adapters on a GPU.
func checkDevice(dev gotch.Device, o Options) error {
	if !dev.IsCuda() {
		return nil
	}
	if o.Adapter.Method == adapter.LRLoRA && !phiop.BuiltWithCUDA() {
		return fmt.Errorf("%w: train.device %v: LR-LoRA's fused φ op was built without its CUDA kernels; "+
			"build with `make -C phiop cuda` and `go build -tags cuda` (see README, GPUs)", ErrConfig, dev)
	}
	return nil
}

// deviceReducer is a group that reduces CUDA memory in place (ncclpg.Group): Device is
// the CUDA device its communicator drives.
type deviceReducer interface {
	collective.RawAllReducer
	Device() int
}

// flatGrads, set by tests, sends CPU gradients through the flat in-place path (a Gloo
// group reduces host memory with AllReduceRaw) so that the path GPU ranks take runs on
// machines without a GPU.
var flatGrads bool

// useFlat reports whether gradients on dev go through allReduceFlat with g.
func useFlat(g collective.ProcessGroup, dev gotch.Device) (collective.RawAllReducer, bool) {
	if dev.IsCuda() {
		r, ok := g.(deviceReducer)
		if ok && r.Device() != dev.Value && gotch.CUDA.DeviceCount() > 1 {
			return nil, false // a communicator on another GPU: reduce through the host
		}
		return r, ok
	}
	r, ok := g.(collective.RawAllReducer)
	return r, ok && flatGrads
}

// allReduceFlat sums the gradients of params across ranks in place with one raw
// all-reduce: the gradients (all of one dtype) are concatenated into one flat tensor on
// their device, reduced there and copied back. On a GPU the device is synchronised first,
// since the group's collective runs on its own stream.
func allReduceFlat(ctx context.Context, r collective.RawAllReducer, params []ts.NamedTensor, dev gotch.Device, rank int) error {
	grads, err := gradsOf(params, rank)
	defer dropAll(grads)
	if err != nil || len(grads) == 0 {
		return err
	}
	dt := grads[0].DType()
	for i, grad := range grads {
		if grad.DType() != dt {
			return fmt.Errorf("train: gradients of %s (%v) and %s (%v) differ in dtype", params[0].Name, dt, params[i].Name, grad.DType())
		}
	}
	var cdt collective.DType
	switch dt {
	case gotch.Float:
		cdt = collective.Float32
	case gotch.Double:
		cdt = collective.Float64
	default:
		return fmt.Errorf("train: all-reduce gradients: dtype %v (want float32 or float64)", dt)
	}
	return withoutGrad(func() error {
		views := make([]*ts.Tensor, 0, len(grads))
		defer func() {
			for _, v := range views {
				v.Drop()
			}
		}()
		for _, g := range grads {
			v, err := g.Reshape([]int64{-1}, false)
			if err != nil {
				return fmt.Errorf("train: flatten gradient: %w", err)
			}
			views = append(views, v)
		}
		flat, err := ts.Cat(views, 0)
		if err != nil {
			return fmt.Errorf("train: concatenate gradients: %w", err)
		}
		defer flat.Drop()
		var n int64
		sizes := make([]int64, len(views))
		for i, v := range views {
			shape, err := v.Size()
			if err != nil {
				return fmt.Errorf("train: gradient bucket: %w", err)
			}
			sizes[i] = shape[0]
			n += shape[0]
		}
		ptr, err := flat.DataPtr()
		if err != nil {
			return fmt.Errorf("train: gradient bucket: %w", err)
		}
		if dev.IsCuda() {
			if err := ts.CudaSynchronize(int(dev.Value)); err != nil {
				return fmt.Errorf("train: synchronise %v before the all-reduce: %w", dev, err)
			}
		}
		if err := r.AllReduceRaw(ctx, ptr, int(n), cdt, collective.Sum); err != nil {
			return fmt.Errorf("train: all-reduce gradients: %w", err)
		}
		var off int64
		for i, g := range grads {
			part, err := flat.Narrow(0, off, sizes[i], false)
			if err != nil {
				return fmt.Errorf("train: split the reduced gradients: %w", err)
			}
			off += sizes[i]
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
	})
}
