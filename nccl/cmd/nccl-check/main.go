// Command nccl-check exercises the nccl package on a real GPU with world
// size 1: it loads libnccl and libcudart, runs AllReduce, Reduce,
// AllGather, Broadcast and ReduceScatter over several data types, waits for
// each through the watchdog, and prints one PASS or FAIL line per check
// with the values it saw. It links neither NCCL, CUDA nor libtorch, so it
// can be built here and carried to a GPU machine that has no Go:
//
//	CGO_ENABLED=1 go build -o nccl-check ./nccl/cmd/nccl-check
//	ldd nccl-check                    # no libnccl, libcudart or libtorch
//	./nccl-check -device 0            # on the GPU machine
//	LRTRAIN_NCCL_LIBRARY=/path/libnccl.so.2 ./nccl-check   # a chosen build
//
// Exit status: 0 all passed, 1 some check failed, 2 setup failed (for
// example no libnccl).
package main

import (
	"flag"
	"os"
	"time"
)

func main() {
	var cfg config
	flag.IntVar(&cfg.device, "device", 0, "CUDA device to run on")
	flag.IntVar(&cfg.count, "count", 8, "elements per rank in each collective")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "watchdog timeout per collective")
	flag.Parse()
	os.Exit(run(os.Stdout, cfg))
}
