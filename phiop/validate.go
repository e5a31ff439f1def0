package phiop

import (
	"github.com/lrtrain/lrtrain/adapter"

	"fmt"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// meta is what validation needs to know about a tensor.
type meta struct {
	name   string
	shape  []int64
	dtype  gotch.DType
	device gotch.Device
}

func isCUDA(d gotch.Device) bool { return d.Name == "CUDA" }

func deviceName(d gotch.Device) string {
	if isCUDA(d) {
		return fmt.Sprintf("cuda:%d", d.Value)
	}
	return strings.ToLower(d.Name)
}

func sameDevice(a, b gotch.Device) bool {
	return a.Name == b.Name && (a.Name != "CUDA" || a.Value == b.Value)
}

func readMeta(name string, t *ts.Tensor) (meta, error) {
	if t == nil || t.Ctensor() == nil {
		return meta{}, fmt.Errorf("%w: %s", ErrNilTensor, name)
	}
	shape, err := t.Size()
	if err != nil {
		return meta{}, fmt.Errorf("phiop: read shape of %s: %w", name, err)
	}
	dev, err := t.Device()
	if err != nil {
		return meta{}, fmt.Errorf("phiop: read device of %s: %w", name, err)
	}
	return meta{name: name, shape: shape, dtype: t.DType(), device: dev}, nil
}

// validate checks the arguments of Apply and Naive.
func validate(m, amplitude, bandwidthRaw, grid *ts.Tensor, basis adapter.Basis, scale float64) error {
	names := [...]string{"M", "amplitude", "bandwidth_raw", "grid"}
	var metas [4]meta
	for i, t := range []*ts.Tensor{m, amplitude, bandwidthRaw, grid} {
		md, err := readMeta(names[i], t)
		if err != nil {
			return err
		}
		metas[i] = md
	}
	return checkMeta(metas, basis, scale, builtWithCUDA())
}

// checkMeta is the validation proper, on metadata only, so that tests can
// describe tensors this machine cannot create (CUDA ones).
func checkMeta(metas [4]meta, basis adapter.Basis, scale float64, haveCUDA bool) error {
	if _, ok := basisCodes[basis]; !ok {
		return fmt.Errorf("%w %q", ErrBasis, basis)
	}
	if err := checkScale(scale); err != nil {
		return err
	}
	m := metas[0]
	if m.dtype != gotch.Float && m.dtype != gotch.Double {
		return fmt.Errorf("%w: M is %v, want float32 or float64", ErrDType, m.dtype)
	}
	if isCUDA(m.device) && !haveCUDA {
		return fmt.Errorf("%w (M is on %s)", ErrNoCUDA, deviceName(m.device))
	}
	if !isCUDA(m.device) && m.device.Name != "CPU" {
		return fmt.Errorf("%w: M is on %s, want cpu or cuda", ErrDevice, deviceName(m.device))
	}
	K := int64(-1)
	for _, v := range metas[1:] {
		if len(v.shape) != 1 {
			return fmt.Errorf("%w: %s has shape %v, want 1-D [K]", ErrShape, v.name, v.shape)
		}
		if K < 0 {
			K = v.shape[0]
		} else if v.shape[0] != K {
			return fmt.Errorf("%w: %s has length %d, amplitude has %d", ErrShape, v.name, v.shape[0], K)
		}
		if v.dtype != m.dtype {
			return fmt.Errorf("%w: %s is %v, M is %v", ErrDType, v.name, v.dtype, m.dtype)
		}
		if !sameDevice(v.device, m.device) {
			return fmt.Errorf("%w: %s is on %s, M on %s", ErrDevice, v.name, deviceName(v.device), deviceName(m.device))
		}
	}
	if K < 1 {
		return fmt.Errorf("%w: K = %d, want K >= 1", ErrShape, K)
	}
	return nil
}

// nonNil names the first of xs (names[i] for xs[i]) that is nil or holds no C tensor.
func nonNil(names []string, xs ...*ts.Tensor) error {
	for i, t := range xs {
		if t == nil || t.Ctensor() == nil {
			return fmt.Errorf("%w: %s", ErrNilTensor, names[i])
		}
	}
	return nil
}
