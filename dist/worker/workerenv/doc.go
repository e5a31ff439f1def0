// Package workerenv is the contract between lrtrain launch and the workers it
// starts: the environment variables the launcher sets (torchrun's names plus
// LRTRAIN_* ones), written by Env.Vars and read back by Read.
//
// It is a leaf: it imports only the standard library and dist/rdzv (for
// Env.RdzvOptions). The launcher (dist/launch) imports it to write a worker's
// environment; a worker (dist/worker) imports it to read that environment,
// without linking the launcher or its embedded etcd server.
//
// The variables:
//
//	RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE   the worker's ranks and sizes
//	GROUP_RANK, GROUP_WORLD_SIZE                      its node's rank, the node count
//	ROLE_NAME, ROLE_RANK, ROLE_WORLD_SIZE             one role: role ranks are global ranks
//	MASTER_ADDR, MASTER_PORT                          agreed by node rank 0 for the round
//	TORCHELASTIC_RESTART_COUNT, LRTRAIN_RESTART_COUNT restarts so far
//	TORCHELASTIC_MAX_RESTARTS, TORCHELASTIC_RUN_ID    the restart budget, the job id
//	LRTRAIN_RDZV_ENDPOINTS, _JOB, _ROUND              the launcher's rendezvous round
//	LRTRAIN_RDZV_CACERT, _CERT, _KEY, _USER, _PASSWORD etcd TLS files and credentials
//	LRTRAIN_RDZV_TTL, _DIAL_TIMEOUT                   the launcher's lease TTL and dial timeout
//	CUDA_VISIBLE_DEVICES, OMP_NUM_THREADS             one GPU per worker; CPU threads per worker
//
// A process is a launched worker when LRTRAIN_RDZV_JOB is set (Launched).
package workerenv
