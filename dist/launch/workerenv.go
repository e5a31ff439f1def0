package launch

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lrtrain/lrtrain/dist/rdzv"
)

// WorkerEnv is what the launcher tells one worker through its environment,
// under torchrun's names plus LRTRAIN_* ones (see Vars). A worker reads it
// back with ReadWorkerEnv.
type WorkerEnv struct {
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

// Vars is the environment of the worker, "NAME=value" entries.
func (w WorkerEnv) Vars() []string {
	vars := []string{
		"RANK=" + strconv.Itoa(w.Rank),
		"LOCAL_RANK=" + strconv.Itoa(w.LocalRank),
		"WORLD_SIZE=" + strconv.Itoa(w.WorldSize),
		"LOCAL_WORLD_SIZE=" + strconv.Itoa(w.LocalWorldSize),
		"GROUP_RANK=" + strconv.Itoa(w.NodeRank),
		"GROUP_WORLD_SIZE=" + strconv.Itoa(w.NumNodes),
		"ROLE_NAME=" + w.Role,
		"ROLE_RANK=" + strconv.Itoa(w.Rank), // one role: role ranks are global ranks
		"ROLE_WORLD_SIZE=" + strconv.Itoa(w.WorldSize),
		"MASTER_ADDR=" + w.MasterAddr,
		"MASTER_PORT=" + strconv.Itoa(w.MasterPort),
		"TORCHELASTIC_RESTART_COUNT=" + strconv.Itoa(w.Restart),
		"TORCHELASTIC_MAX_RESTARTS=" + strconv.Itoa(w.MaxRestarts),
		"TORCHELASTIC_RUN_ID=" + w.Job,
		"LRTRAIN_RESTART_COUNT=" + strconv.Itoa(w.Restart),
		"LRTRAIN_RDZV_ENDPOINTS=" + strings.Join(w.Endpoints, ","),
		"LRTRAIN_RDZV_JOB=" + w.Job,
		"LRTRAIN_RDZV_ROUND=" + strconv.FormatInt(w.Round, 10),
	}
	opt := func(name, v string) {
		if v != "" {
			vars = append(vars, name+"="+v)
		}
	}
	opt("LRTRAIN_RDZV_CACERT", w.CACert)
	opt("LRTRAIN_RDZV_CERT", w.Cert)
	opt("LRTRAIN_RDZV_KEY", w.Key)
	opt("LRTRAIN_RDZV_USER", w.User)
	opt("LRTRAIN_RDZV_PASSWORD", w.Password)
	if w.TTL > 0 {
		vars = append(vars, "LRTRAIN_RDZV_TTL="+w.TTL.String())
	}
	if w.DialTimeout > 0 {
		vars = append(vars, "LRTRAIN_RDZV_DIAL_TIMEOUT="+w.DialTimeout.String())
	}
	opt("CUDA_VISIBLE_DEVICES", w.CUDAVisibleDevices)
	if w.OMPThreads > 0 {
		vars = append(vars, "OMP_NUM_THREADS="+strconv.Itoa(w.OMPThreads))
	}
	return vars
}

// mergeEnv returns base with vars added; a variable of vars replaces the
// one in base, except OMP_NUM_THREADS, which the user's setting wins.
func mergeEnv(base, vars []string) []string {
	set := map[string]bool{}
	for _, kv := range vars {
		name, _, _ := strings.Cut(kv, "=")
		set[name] = true
	}
	userOMP := false
	out := make([]string, 0, len(base)+len(vars))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if name == "OMP_NUM_THREADS" {
			userOMP = true
		} else if set[name] {
			continue
		}
		out = append(out, kv)
	}
	for _, kv := range vars {
		if userOMP && strings.HasPrefix(kv, "OMP_NUM_THREADS=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// ReadWorkerEnv reads the variables the launcher set for this worker
// (lookup is usually os.LookupEnv). It fails, naming the variable, when one
// of the required ones is missing or malformed.
func ReadWorkerEnv(lookup func(string) (string, bool)) (WorkerEnv, error) {
	var w WorkerEnv
	var errs []string
	num := func(name string, p *int) {
		v, ok := lookup(name)
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 {
			errs = append(errs, fmt.Sprintf("%s=%q", name, v))
		}
		*p = n
	}
	num("RANK", &w.Rank)
	num("LOCAL_RANK", &w.LocalRank)
	num("WORLD_SIZE", &w.WorldSize)
	num("LOCAL_WORLD_SIZE", &w.LocalWorldSize)
	num("GROUP_RANK", &w.NodeRank)
	num("GROUP_WORLD_SIZE", &w.NumNodes)
	num("MASTER_PORT", &w.MasterPort)
	num("LRTRAIN_RESTART_COUNT", &w.Restart)
	num("TORCHELASTIC_MAX_RESTARTS", &w.MaxRestarts)
	var round int
	num("LRTRAIN_RDZV_ROUND", &round)
	w.Round = int64(round)
	str := func(name string) string { v, _ := lookup(name); return v }
	w.Role, w.MasterAddr, w.Job = str("ROLE_NAME"), str("MASTER_ADDR"), str("LRTRAIN_RDZV_JOB")
	if eps := str("LRTRAIN_RDZV_ENDPOINTS"); eps != "" {
		w.Endpoints = strings.Split(eps, ",")
	}
	w.CACert, w.Cert, w.Key = str("LRTRAIN_RDZV_CACERT"), str("LRTRAIN_RDZV_CERT"), str("LRTRAIN_RDZV_KEY")
	w.User, w.Password = str("LRTRAIN_RDZV_USER"), str("LRTRAIN_RDZV_PASSWORD")
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
	dur("LRTRAIN_RDZV_TTL", &w.TTL)
	dur("LRTRAIN_RDZV_DIAL_TIMEOUT", &w.DialTimeout)
	w.CUDAVisibleDevices = str("CUDA_VISIBLE_DEVICES")
	w.OMPThreads, _ = strconv.Atoi(str("OMP_NUM_THREADS"))
	if w.MasterAddr == "" || w.Job == "" || len(w.Endpoints) == 0 {
		errs = append(errs, "MASTER_ADDR, LRTRAIN_RDZV_JOB and LRTRAIN_RDZV_ENDPOINTS must be set")
	}
	if len(errs) > 0 {
		return w, fmt.Errorf("%w: worker environment: %s (was this process started by lrtrain launch?)",
			ErrConfig, strings.Join(errs, ", "))
	}
	if w.Rank >= w.WorldSize || w.LocalRank >= w.LocalWorldSize {
		return w, fmt.Errorf("%w: worker environment: rank %d of %d, local rank %d of %d",
			ErrConfig, w.Rank, w.WorldSize, w.LocalRank, w.LocalWorldSize)
	}
	return w, nil
}

// RdzvOptions are the options for rdzv.OpenWorker(ctx, w.Job, w.Round,
// w.Rank, w.WorldSize, opts...): the launcher's endpoints, TLS files,
// credentials, lease TTL and dial timeout. Callers may append their own
// (a logger, a wait timeout); later options win.
func (w WorkerEnv) RdzvOptions() []rdzv.Option {
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
