package launch

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// DetectHost counts the node's CPUs and asks NVML (loaded at run time, so a
// node without the driver simply has no GPUs) how many GPUs it has. When
// CUDA_VISIBLE_DEVICES is set in the launcher's environment, its entries are
// the GPUs the workers share out, in order.
func DetectHost() Host {
	h := Host{CPUs: runtime.NumCPU()}
	n, err := countGPUs()
	if err != nil {
		h.GPUErr = err
		return h
	}
	h.GPUs = visibleGPUs(n, os.Getenv("CUDA_VISIBLE_DEVICES"), os.LookupEnv)
	if len(h.GPUs) == 0 {
		h.GPUErr = errors.New("CUDA_VISIBLE_DEVICES hides every GPU")
	}
	return h
}

func countGPUs() (int, error) {
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		return 0, fmt.Errorf("NVML: %s", nvml.ErrorString(ret))
	}
	defer nvml.Shutdown()
	n, ret := nvml.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return 0, fmt.Errorf("NVML device count: %s", nvml.ErrorString(ret))
	}
	if n == 0 {
		return 0, errors.New("NVML reports no GPU")
	}
	return n, nil
}

// visibleGPUs lists the GPU ids workers may use: "0".."n-1", or the entries
// of CUDA_VISIBLE_DEVICES when the launcher was given one.
func visibleGPUs(n int, visible string, lookup func(string) (string, bool)) []string {
	if _, set := lookup("CUDA_VISIBLE_DEVICES"); set {
		var ids []string
		for _, id := range strings.Split(visible, ",") {
			if id = strings.TrimSpace(id); id != "" && id != "-1" {
				ids = append(ids, id)
			}
		}
		return ids
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(i)
	}
	return ids
}
