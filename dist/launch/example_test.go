package launch_test

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/lrtrain/lrtrain/dist/launch"
)

// The configuration of one node of a four-node job, as `lrtrain launch`
// builds it from torchrun's PET_* variables and its flags (a flag wins over
// its variable):
//
//	PET_NNODES=2:4 PET_RDZV_ENDPOINT=... lrtrain launch --max-restarts 3 -- train --config cfg.yaml
func Example() {
	env := map[string]string{
		"PET_NNODES":         "2:4",
		"PET_NPROC_PER_NODE": "cpu",
		"PET_CPU_WORKERS":    "2",
		"PET_RDZV_BACKEND":   "etcd",
		"PET_RDZV_ENDPOINT":  "etcd-0:2379,etcd-1:2379",
		"PET_RDZV_ID":        "finetune-42",
		"PET_RDZV_LAST_CALL": "15", // seconds, as torchrun writes them
		"PET_MAX_RESTARTS":   "9",  // the flag wins
	}
	opts := launch.DefaultOptions()
	fs := pflag.NewFlagSet("launch", pflag.ContinueOnError)
	opts.AddFlags(fs)
	if err := fs.Parse([]string{"--max-restarts", "3", "--", "train", "--config", "cfg.yaml"}); err != nil {
		fmt.Println(err)
		return
	}
	used, err := opts.ApplyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg, err := launch.Resolve(opts, fs.Args(), launch.Host{CPUs: 16})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("from the environment:", used)
	fmt.Print(cfg)
	fmt.Println("worker args:", cfg.Args)
	// Output:
	// from the environment: [PET_NNODES PET_NPROC_PER_NODE PET_CPU_WORKERS PET_RDZV_BACKEND PET_RDZV_ENDPOINT PET_RDZV_ID PET_RDZV_LAST_CALL]
	// nodes: 2:4
	// workers: 2 cpu
	// omp threads: 8
	// rendezvous: etcd-0:2379,etcd-1:2379
	// job: finetune-42
	// max restarts: 3
	// last call: 15s
	// grace period: 30s
	// run dir: lrtrain-run
	// worker args: [train --config cfg.yaml]
}
