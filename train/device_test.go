package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/phiop"
)

// train.device values resolve to the CPU or a GPU the linked libtorch sees; a GPU that
// is not there is a configuration error that says why, and so is a malformed value.
func TestResolveDevice(t *testing.T) {
	gpus := int(gotch.CUDA.DeviceCount())
	t.Logf("libtorch sees %d CUDA device(s)", gpus)
	for _, spec := range []string{"cpu", " cpu "} {
		if d, err := ResolveDevice(spec, 3); err != nil || d.IsCuda() {
			t.Errorf("ResolveDevice(%q) = %v, %v; want the CPU", spec, d, err)
		}
	}
	for _, spec := range []string{"", "auto"} {
		d, err := ResolveDevice(spec, 0)
		if err != nil || d.IsCuda() != (gpus > 0) {
			t.Errorf("ResolveDevice(%q) = %v, %v with %d GPUs", spec, d, err, gpus)
		}
	}
	for _, spec := range []string{"gpu", "cuda:", "cuda:x", "cuda:-1", "CUDA", "cuda0"} {
		_, err := ResolveDevice(spec, 0)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "train.device") {
			t.Errorf("ResolveDevice(%q): %v; want a configuration error naming train.device", spec, err)
		}
	}
	if gpus == 0 {
		for _, spec := range []string{"cuda", "cuda:0"} {
			_, err := ResolveDevice(spec, 0)
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "no CUDA device") {
				t.Errorf("ResolveDevice(%q) without a GPU: %v; want a configuration error saying so", spec, err)
			}
		}
		return
	}
	if d, err := ResolveDevice("cuda:0", 5); err != nil || d.Value != 0 {
		t.Errorf("ResolveDevice(cuda:0) = %v, %v", d, err)
	}
	if _, err := ResolveDevice("cuda", gpus); gpus > 1 && !errors.Is(err, ErrConfig) {
		t.Errorf("local rank %d of %d GPUs: %v; want a configuration error", gpus, gpus, err)
	}
	if _, err := ResolveDevice(fmt.Sprintf("cuda:%d", gpus), 0); !errors.Is(err, ErrConfig) {
		t.Errorf("GPU %d of %d: %v; want a configuration error", gpus, gpus, err)
	}
}

// A GPU run of LR-LoRA needs the fused op's CUDA kernels; LoRA does not use the op.
func TestCheckDeviceNeedsTheCUDAKernelsForLRLoRA(t *testing.T) {
	o := tinyOptions(t, t.TempDir())
	gpu := gotch.CudaBuilder(0)
	if err := checkDevice(gotch.CPU, o); err != nil {
		t.Errorf("CPU: %v", err)
	}
	err := checkDevice(gpu, o)
	if phiop.BuiltWithCUDA() {
		if err != nil {
			t.Errorf("built with CUDA kernels: %v", err)
		}
	} else if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "-tags cuda") {
		t.Errorf("LR-LoRA on a GPU without the CUDA kernels: %v; want a configuration error saying how to build them", err)
	}
	o.Adapter.Method = "lora"
	if err := checkDevice(gpu, o); err != nil {
		t.Errorf("LoRA on a GPU: %v", err)
	}
}

// A run asked to train on a GPU this machine does not have stops before loading
// anything, with the configuration error.
func TestRunOnMissingGPUFailsClearly(t *testing.T) {
	if gotch.CUDA.IsAvailable() {
		t.Skip("a GPU is visible: TestResolveDevice covers the GPU indices")
	}
	o := tinyOptions(t, t.TempDir())
	o.Train.Device = "cuda"
	_, err := Run(context.Background(), o, Env{Console: io.Discard})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "train.device cuda") {
		t.Fatalf("Run with train.device cuda and no GPU: %v", err)
	}
}
