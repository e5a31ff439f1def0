package ncclpg

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lrtrain/lrtrain/nccl"
)

// fakeNCCL and fakeCudart are the stand-in libraries of
// nccl/internal/fakelib, built once for the test binary. That package is
// internal to nccl/, so its C sources are compiled here directly.
var fakeNCCL, fakeCudart string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ncclpg-fakes-")
	if err == nil {
		err = buildFakes(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	os.Setenv(nccl.EnvNCCLLibrary, fakeNCCL)
	os.Setenv(nccl.EnvCudartLibrary, fakeCudart)
	code := m.Run()
	_ = nccl.Shutdown()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildFakes(dir string) error {
	src := filepath.Join("..", "..", "..", "nccl", "internal", "fakelib", "testdata")
	fakeNCCL = filepath.Join(dir, "libnccl.so.2")
	fakeCudart = filepath.Join(dir, "libcudart.so.12")
	for _, b := range [][2]string{{"fake_nccl.c", fakeNCCL}, {"fake_cudart.c", fakeCudart}} {
		cc := os.Getenv("CC")
		if cc == "" {
			cc = "cc"
		}
		cmd := exec.Command(cc, "-shared", "-fPIC", "-O1", "-Wall", "-o", b[1], filepath.Join(src, b[0]))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("compiling fake %s: %w\n%s", b[0], err, stderr.String())
		}
	}
	return nil
}
