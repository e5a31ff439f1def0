package workerenv

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lrtrain/lrtrain/dist/rdzv"
)

// The names of the variables the launcher sets for a worker.
const (
	VarRank              = "RANK"
	VarLocalRank         = "LOCAL_RANK"
	VarWorldSize         = "WORLD_SIZE"
	VarLocalWorldSize    = "LOCAL_WORLD_SIZE"
	VarGroupRank         = "GROUP_RANK"
	VarGroupWorldSize    = "GROUP_WORLD_SIZE"
	VarRoleName          = "ROLE_NAME"
	VarRoleRank          = "ROLE_RANK"
	VarRoleWorldSize     = "ROLE_WORLD_SIZE"
	VarMasterAddr        = "MASTER_ADDR"
	VarMasterPort        = "MASTER_PORT"
	VarTorchRestartCount = "TORCHELASTIC_RESTART_COUNT"
	VarTorchMaxRestarts  = "TORCHELASTIC_MAX_RESTARTS"
	VarTorchRunID        = "TORCHELASTIC_RUN_ID"
	VarRestartCount      = "LRTRAIN_RESTART_COUNT"
	VarRdzvEndpoints     = "LRTRAIN_RDZV_ENDPOINTS"
	VarRdzvJob           = "LRTRAIN_RDZV_JOB"
	VarRdzvRound         = "LRTRAIN_RDZV_ROUND"
	VarRdzvCACert        = "LRTRAIN_RDZV_CACERT"
	VarRdzvCert          = "LRTRAIN_RDZV_CERT"
	VarRdzvKey           = "LRTRAIN_RDZV_KEY"
	VarRdzvUser          = "LRTRAIN_RDZV_USER"
	VarRdzvPassword      = "LRTRAIN_RDZV_PASSWORD"
	VarRdzvTTL           = "LRTRAIN_RDZV_TTL"
	VarRdzvDialTimeout   = "LRTRAIN_RDZV_DIAL_TIMEOUT"
	VarCUDAVisible       = "CUDA_VISIBLE_DEVICES"
	VarOMPThreads        = "OMP_NUM_THREADS"
)

// ErrInvalid is wrapped by Read's errors: a required variable is missing or
// malformed, or the ranks do not fit the sizes.
var ErrInvalid = errors.New("invalid worker environment")

// Env is what the launcher tells one worker through its environment (see the
// package documentation for the names).
type Env struct {
	Rank, LocalRank           int
	WorldSize, LocalWorldSize int
	NodeRank, NumNodes        int
	Role                      string
	MasterAddr                string
	MasterPort                int
	Restart, MaxRestarts      int
	// The rendezvous the launcher joined, for rdzv.OpenWorker.
	Endpoints         []string
	Job               string
	Round             int64
	CACert, Cert, Key string
	User, Password    string
	// The launcher's lease TTL and dial timeout, so that a worker's own
	// session is lost (and its collectives aborted) as soon as the
	// launcher's; 0: not set by the launcher (rdzv's defaults).
	TTL, DialTimeout   time.Duration
	CUDAVisibleDevices string // "" : not set by the launcher
	OMPThreads         int    // 0: not set by the launcher
}

// Launched reports whether lookup (usually os.LookupEnv) shows a process
// started by lrtrain launch: LRTRAIN_RDZV_JOB is set.
func Launched(lookup func(string) (string, bool)) bool {
	_, ok := lookup(VarRdzvJob)
	return ok
}

// Vars is the environment of the worker, "NAME=value" entries.
func (w Env) Vars() []string {
	vars := []string{
		VarRank + "=" + strconv.Itoa(w.Rank),
		VarLocalRank + "=" + strconv.Itoa(w.LocalRank),
		VarWorldSize + "=" + strconv.Itoa(w.WorldSize),
		VarLocalWorldSize + "=" + strconv.Itoa(w.LocalWorldSize),
		VarGroupRank + "=" + strconv.Itoa(w.NodeRank),
		VarGroupWorldSize + "=" + strconv.Itoa(w.NumNodes),
		VarRoleName + "=" + w.Role,
		VarRoleRank + "=" + strconv.Itoa(w.Rank), // one role: role ranks are global ranks
		VarRoleWorldSize + "=" + strconv.Itoa(w.WorldSize),
		VarMasterAddr + "=" + w.MasterAddr,
		VarMasterPort + "=" + strconv.Itoa(w.MasterPort),
		VarTorchRestartCount + "=" + strconv.Itoa(w.Restart),
		VarTorchMaxRestarts + "=" + strconv.Itoa(w.MaxRestarts),
		VarTorchRunID + "=" + w.Job,
		VarRestartCount + "=" + strconv.Itoa(w.Restart),
		VarRdzvEndpoints + "=" + strings.Join(w.Endpoints, ","),
		VarRdzvJob + "=" + w.Job,
		VarRdzvRound + "=" + strconv.FormatInt(w.Round, 10),
	}
	opt := func(name, v string) {
		if v != "" {
			vars = append(vars, name+"="+v)
		}
	}
	opt(VarRdzvCACert, w.CACert)
	opt(VarRdzvCert, w.Cert)
	opt(VarRdzvKey, w.Key)
	opt(VarRdzvUser, w.User)
	opt(VarRdzvPassword, w.Password)
	if w.TTL > 0 {
		vars = append(vars, VarRdzvTTL+"="+w.TTL.String())
	}
	if w.DialTimeout > 0 {
		vars = append(vars, VarRdzvDialTimeout+"="+w.DialTimeout.String())
	}
	opt(VarCUDAVisible, w.CUDAVisibleDevices)
	if w.OMPThreads > 0 {
		vars = append(vars, VarOMPThreads+"="+strconv.Itoa(w.OMPThreads))
	}
	return vars
}

// Read reads the variables the launcher set for this worker (lookup is
// usually os.LookupEnv). It fails with ErrInvalid, naming each variable,
// when a required one is missing or malformed.
func Read(lookup func(string) (string, bool)) (Env, error) {
	var w Env
	var errs []string
	num := func(name string, p *int) {
		v, ok := lookup(name)
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			errs = append(errs, fmt.Sprintf("%s=%q", name, v))
		}
		*p = n
	}
	num(VarRank, &w.Rank)
	num(VarLocalRank, &w.LocalRank)
	num(VarWorldSize, &w.WorldSize)
	num(VarLocalWorldSize, &w.LocalWorldSize)
	num(VarGroupRank, &w.NodeRank)
	num(VarGroupWorldSize, &w.NumNodes)
	num(VarMasterPort, &w.MasterPort)
	num(VarRestartCount, &w.Restart)
	num(VarTorchMaxRestarts, &w.MaxRestarts)
	if v, ok := lookup(VarRdzvRound); !ok {
		errs = append(errs, fmt.Sprintf("%s=%q", VarRdzvRound, v))
	} else if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
		errs = append(errs, fmt.Sprintf("%s=%q", VarRdzvRound, v))
	} else {
		w.Round = n
	}
	str := func(name string) string { v, _ := lookup(name); return v }
	w.Role, w.MasterAddr, w.Job = str(VarRoleName), str(VarMasterAddr), str(VarRdzvJob)
	if eps := str(VarRdzvEndpoints); eps != "" {
		w.Endpoints = strings.Split(eps, ",")
	}
	w.CACert, w.Cert, w.Key = str(VarRdzvCACert), str(VarRdzvCert), str(VarRdzvKey)
	w.User, w.Password = str(VarRdzvUser), str(VarRdzvPassword)
	dur := func(name string, p *time.Duration) {
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Sprintf("%s=%q", name, v))
		}
		*p = d
	}
	dur(VarRdzvTTL, &w.TTL)
	dur(VarRdzvDialTimeout, &w.DialTimeout)
	w.CUDAVisibleDevices = str(VarCUDAVisible)
	w.OMPThreads, _ = strconv.Atoi(str(VarOMPThreads))
	if w.MasterAddr == "" || w.Job == "" || len(w.Endpoints) == 0 {
		errs = append(errs, fmt.Sprintf("%s, %s and %s must be set", VarMasterAddr, VarRdzvJob, VarRdzvEndpoints))
	}
	if len(errs) > 0 {
		return w, fmt.Errorf("%w: %s (was this process started by lrtrain launch?)", ErrInvalid, strings.Join(errs, ", "))
	}
	if w.Rank >= w.WorldSize || w.LocalRank >= w.LocalWorldSize {
		return w, fmt.Errorf("%w: %s=%d of %s=%d, %s=%d of %s=%d", ErrInvalid, VarRank, w.Rank, VarWorldSize, w.WorldSize,
			VarLocalRank, w.LocalRank, VarLocalWorldSize, w.LocalWorldSize)
	}
	return w, nil
}

// RdzvOptions are the options for rdzv.OpenWorker(ctx, w.Job, w.Round,
// w.Rank, w.WorldSize, opts...): the launcher's endpoints, TLS files,
// credentials, lease TTL and dial timeout. Callers may append their own
// (a logger, a wait timeout); later options win.
func (w Env) RdzvOptions() []rdzv.Option {
	opts := []rdzv.Option{rdzv.WithEndpoints(w.Endpoints...)}
	if w.TTL > 0 {
		opts = append(opts, rdzv.WithTTL(w.TTL))
	}
	if w.DialTimeout > 0 {
		opts = append(opts, rdzv.WithDialTimeout(w.DialTimeout))
	}
	if w.CACert != "" || w.Cert != "" {
		opts = append(opts, rdzv.WithTLSFiles(w.Cert, w.Key, w.CACert))
	}
	if w.User != "" {
		opts = append(opts, rdzv.WithAuth(w.User, w.Password))
	}
	return opts
}
