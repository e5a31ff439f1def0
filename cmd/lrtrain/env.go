package main

import (
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/spf13/cobra"

	"github.com/lrtrain/lrtrain/dist/worker"
	"github.com/lrtrain/lrtrain/phiop"
	"github.com/lrtrain/lrtrain/train"
)

func newEnvCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "env",
		Short: "Describe the machine as lrtrain sees it: libtorch, threads, BLAS, GPUs",
		Example: `  lrtrain env
  OMP_NUM_THREADS=4 lrtrain env`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return printEnv(cmd.OutOrStdout())
		},
	}
}

func printEnv(out io.Writer) error {
	phiop.InitThreads()
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "lrtrain\t%s\n", versionString())
	fmt.Fprintf(w, "cpus\t%d\n", runtime.NumCPU())
	fmt.Fprintf(w, "libtorch\t%s (cuda: %t)\n", phiop.TorchVersion(), phiop.CUDAAvailable())
	kernels := "CPU kernels only (make build-cuda adds the CUDA kernels)"
	if phiop.BuiltWithCUDA() {
		kernels = "CPU and CUDA kernels"
	}
	fmt.Fprintf(w, "phi op\t%s\n", kernels)
	var device string
	if dev, err := train.ResolveDevice("auto", 0); err != nil {
		device = err.Error()
	} else if dev.IsCuda() {
		device = fmt.Sprintf("cuda:%d (dist.backend auto: %s)", dev.Value, worker.AutoBackend(dev))
	} else {
		device = "cpu (dist.backend auto: " + worker.AutoBackend(dev) + ")"
	}
	fmt.Fprintf(w, "train.device auto\t%s\n", device)
	fmt.Fprintf(w, "intra-op threads\t%d\n", phiop.NumThreads())
	fmt.Fprintf(w, "blas\t%s\n", blasLibrary())
	gpus, err := listGPUs()
	if err != nil {
		fmt.Fprintf(w, "gpus\tnone (%v)\n", err)
	} else {
		fmt.Fprintf(w, "gpus\t%d\n", len(gpus))
		for _, g := range gpus {
			fmt.Fprintf(w, "\t%s\n", g)
		}
	}
	return w.Flush()
}

// blasLibrary names the BLAS that Debian's alternatives system points libblas at.
func blasLibrary() string {
	for _, link := range []string{
		"/etc/alternatives/libblas.so.3-" + multiarch(),
		"/etc/alternatives/libblas.so.3",
	} {
		if target, err := filepath.EvalSymlinks(link); err == nil {
			switch {
			case strings.Contains(target, "openblas"):
				return "OpenBLAS (" + target + ")"
			case strings.Contains(target, "blis"):
				return "BLIS (" + target + ")"
			case strings.Contains(target, "mkl"):
				return "MKL (" + target + ")"
			default:
				return "reference BLAS, slow: apt-get install libopenblas0-pthread (" + target + ")"
			}
		}
	}
	return "unknown (libtorch may use its bundled MKL)"
}

func multiarch() string {
	switch runtime.GOARCH {
	case "arm64":
		return "aarch64-linux-gnu"
	default:
		return "x86_64-linux-gnu"
	}
}

// listGPUs asks NVML (loaded at run time; absent on CPU machines) for the GPUs.
func listGPUs() ([]string, error) {
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML: %v", nvml.ErrorString(ret))
	}
	defer nvml.Shutdown()
	n, ret := nvml.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML device count: %v", nvml.ErrorString(ret))
	}
	var gpus []string
	for i := 0; i < n; i++ {
		d, ret := nvml.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML device %d: %v", i, nvml.ErrorString(ret))
		}
		name, _ := d.GetName()
		mem, _ := d.GetMemoryInfo()
		gpus = append(gpus, fmt.Sprintf("%d: %s, %.1f GiB", i, name, float64(mem.Total)/(1<<30)))
	}
	return gpus, nil
}
