package nccl

import (
	"fmt"
	"os"
	"testing"

	"github.com/lrtrain/lrtrain/internal/fakenccl"
)

// fakes are the stand-in libraries built once for the whole test binary.
var fakes fakenccl.Libs

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nccl-fakes-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fakes, err = fakenccl.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	_ = Shutdown()
	os.RemoveAll(dir)
	os.Exit(code)
}
