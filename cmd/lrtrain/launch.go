package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lrtrain/lrtrain/dist/launch"
)

func newLaunchCmd(g *globalFlags) *cobra.Command {
	opts := launch.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "launch [flags] -- <worker args>",
		Short: "Start and supervise this node's training workers (torchrun for lrtrain)",
		Long: `launch is the node agent of a (multi-node) training job, with torchrun's semantics.
It meets the other nodes through etcd (v3 API), starts --nproc-per-node workers that
run "lrtrain <worker args>" (or --exec PROGRAM), and tells each one its place through
the environment: RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, ROLE_RANK,
MASTER_ADDR/MASTER_PORT (picked by node 0), TORCHELASTIC_RESTART_COUNT and
LRTRAIN_RESTART_COUNT, LRTRAIN_RDZV_ENDPOINTS/JOB/ROUND/TTL/DIAL_TIMEOUT (for the
workers' own rendezvous sessions), CUDA_VISIBLE_DEVICES on GPU nodes and OMP_NUM_THREADS
on CPU ones.

When a worker fails, launch stops the others (SIGTERM, SIGKILL after --grace-period,
whole process groups) and restarts the group up to --max-restarts times; the workers
resume from their latest checkpoint. A node that leaves or joins (within
--nnodes MIN:MAX) makes every node restart its workers in a new round, without
counting a restart. SIGINT and SIGTERM are forwarded to the workers.

If etcd stops answering, the launcher's and the workers' sessions are lost within
--rdzv-ttl: collectives in flight abort, the launcher stops the workers and joins
again, giving etcd --rdzv-dial-timeout to answer (an etcd restarted or re-elected by
then is found); otherwise it exits 1 saying etcd is unreachable. A worker that fails
while etcd does not answer does not use up a restart. An outage or a stall of a loaded
machine shorter than the TTL less a sixth of it costs nothing (8.3 s with the default
TTL of 10 s; an etcd leader election takes 1-2 s). The smallest supported TTL is 3 s.

Each worker writes to <run-dir>/logs/round<R>/rank<k>.log; --tee shows ranks on the
console. Every flag can also be set by torchrun's PET_<FLAG> variable
(PET_NNODES, PET_NPROC_PER_NODE, PET_RDZV_ENDPOINT, ...); a flag given on the command
line wins. Rendezvous backends: etcd, etcd-v3 (etcd-v2 is served by the v3 API);
c10d and static are not supported.

Exit status: 0 when every worker exited 0, 1 when a worker failed with no restart
left (the message names the rank, its exit code or signal and its log) or the
rendezvous failed, 2 for invalid flags, 128+N after signal N.`,
		Example: `  # one node, two workers, embedded etcd; rank 0's output on the console
  lrtrain launch --standalone --nproc-per-node 2 --tee 0 -- train --config cfg.yaml

  # on each of 2 to 4 nodes (elastic), one worker per GPU, up to 3 restarts
  lrtrain launch --nnodes 2:4 --nproc-per-node gpu --max-restarts 3 \
      --rdzv-endpoint etcd-0:2379 --rdzv-id finetune-42 -- train --config cfg.yaml

  # the same from torchrun-style variables, running another program
  PET_NNODES=2 PET_RDZV_ENDPOINT=etcd-0:2379 PET_RDZV_ID=job lrtrain launch --exec ./worker.sh -- --epochs 3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := opts.ApplyEnv(cmd.Flags(), os.LookupEnv); err != nil {
				return usageError{err}
			}
			cfg, err := launch.Resolve(opts, args, launch.DetectHost())
			if err != nil {
				if launch.ExitCode(err) == exitUsage {
					return usageError{err}
				}
				return err
			}
			err = launch.Run(cmd.Context(), cfg, newLogger(cmd.ErrOrStderr(), g))
			if code := launch.ExitCode(err); code > exitUsage { // stopped by a signal: 128+N
				fmt.Fprintln(cmd.ErrOrStderr(), "lrtrain:", err)
				os.Exit(code)
			}
			return err
		},
	}
	opts.AddFlags(cmd.Flags())
	// Everything after the first non-flag argument belongs to the workers.
	cmd.Flags().SetInterspersed(false)
	return cmd
}
