// Command needed is the program TestBuiltBinaryNeedsTheDetectedLibtorch builds
// and inspects: it links gotch and phiop the way lrtrain does and prints the
// libtorch version phiop's C++ was compiled against and whether libtorch sees a
// GPU (it cannot unless libtorch_cuda was kept in the binary's NEEDED entries).
package main

import (
	"fmt"

	"github.com/lrtrain/lrtrain/phiop"
	"github.com/sugarme/gotch"
)

func main() {
	fmt.Println(phiop.TorchVersion(), gotch.CUDA.IsAvailable())
}
