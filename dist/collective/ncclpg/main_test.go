package ncclpg

import (
	"fmt"
	"os"
	"testing"

	"github.com/lrtrain/lrtrain/internal/fakenccl"
	"github.com/lrtrain/lrtrain/nccl"
)

// fakeNCCL and fakeCudart are the stand-in libraries of internal/fakenccl,
// built once for the test binary.
var fakeNCCL, fakeCudart string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ncclpg-fakes-")
	var libs fakenccl.Libs
	if err == nil {
		libs, err = fakenccl.Build(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	fakeNCCL, fakeCudart = libs.NCCL, libs.Cudart
	os.Setenv(nccl.EnvNCCLLibrary, fakeNCCL)
	os.Setenv(nccl.EnvCudartLibrary, fakeCudart)
	code := m.Run()
	_ = nccl.Shutdown()
	os.RemoveAll(dir)
	os.Exit(code)
}
