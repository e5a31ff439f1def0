// Package launch is lrtrain's node agent, `lrtrain launch`: torchrun's
// elastic launcher over the etcd v3 rendezvous of package rdzv.
//
//	lrtrain launch --standalone --nproc-per-node 2 --tee 0 -- train --config cfg.yaml
//	lrtrain launch --nnodes 2:4 --nproc-per-node gpu --max-restarts 3 \
//	    --rdzv-endpoint etcd-0:2379 --rdzv-id finetune-42 -- train --config cfg.yaml
//
// # Configuration
//
// Options holds the flags; AddFlags registers them on a pflag.FlagSet and
// ApplyEnv fills the ones not given from torchrun's PET_<FLAG> variables
// (PET_NNODES, PET_NPROC_PER_NODE, PET_RDZV_ENDPOINT, ...), so flags win
// over the environment. Durations take Go syntax or torchrun's bare seconds.
// Resolve checks the options against the node (DetectHost: CPUs, and GPUs
// through NVML, which is loaded at run time) and returns a Config. The
// rendezvous backends are etcd and etcd-v3 (etcd-v2 is accepted and served
// by the v3 API); c10d and static fail with ErrBackend. One node without an
// endpoint runs standalone: an embedded etcd on loopback whose data lives
// under the run directory for the duration of the run.
//
// # Rounds
//
// Run joins a rendezvous round, then node rank 0 picks MASTER_ADDR (the
// address that routes to etcd, or --local-addr) and a free MASTER_PORT and
// publishes them for the round; the other nodes look them up. It starts
// Nproc workers, each in its own process group with its output in
// <run-dir>/logs/round<R>/rank<k>.log, and with the environment of WorkerEnv:
// torchrun's RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK,
// ROLE_RANK, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT, and
// LRTRAIN_RESTART_COUNT and LRTRAIN_RDZV_ENDPOINTS/JOB/ROUND, with which a
// worker opens its own rdzv.Worker (workerenv.Read, Env.RdzvOptions: the
// variables are defined in dist/worker/workerenv, which a worker imports
// without importing this package).
// On a GPU node each worker sees exactly one GPU through
// CUDA_VISIBLE_DEVICES (its cuda:0); on a CPU node OMP_NUM_THREADS is the
// node's CPUs divided by its workers, unless the user set it.
//
// The round ends at the first of: all workers exited 0 (Run waits at an exit
// barrier for the other nodes, then returns nil); a worker exited non-zero or
// was killed; the rendezvous fired (a member lost, a node waiting to join an
// elastic job, the round closed by another node, the session lost). The
// launcher then stops every worker: SIGTERM to each process group, SIGKILL
// after the grace period, so children of workers die too. A worker failure
// costs one of MaxRestarts; with none left Run fails with
// ErrRestartsExhausted and a *WorkerFailure naming the rank, its exit code
// or signal, and its log. A membership change costs nothing. Either way Run
// joins the next round and starts the workers again; they resume from their
// latest checkpoint themselves.
//
// SIGINT and SIGTERM are forwarded to the workers, which get the grace
// period (a second signal kills them at once); Run then returns an
// ErrInterrupted error, for which ExitCode gives 128+signal. An unreachable
// etcd fails within the dial timeout with rdzv.ErrUnreachable.
//
// Workers are also killed if the launcher dies without stopping them
// (Pdeathsig); grandchildren that left the worker's process group are not.
package launch
