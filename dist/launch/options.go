package launch

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Options are the launcher's settings as given on the command line or in
// PET_* variables, before Resolve checks them and probes the node.
type Options struct {
	Nnodes       string // "N" or "MIN:MAX"
	NprocPerNode string // "N", "auto", "gpu" or "cpu"
	CPUWorkers   int    // workers of "auto" and "cpu" on a node without GPUs
	NodeRank     int    // orders the nodes (-1: by agent id)
	Role         string

	RdzvBackend     string
	RdzvEndpoint    string // host:port[,host:port...]
	RdzvID          string
	RdzvLastCall    time.Duration
	RdzvJoinTimeout time.Duration
	RdzvDialTimeout time.Duration
	RdzvTTL         time.Duration
	RdzvCACert      string
	RdzvCert        string
	RdzvKey         string
	RdzvUser        string
	RdzvPassword    string
	Standalone      bool

	MaxRestarts        int
	MonitorInterval    time.Duration
	GracePeriod        time.Duration
	ExitBarrierTimeout time.Duration

	RunDir     string
	Tee        string // global ranks whose output is copied to the console
	Exec       string // program to run instead of this binary
	NoPython   bool   // the first worker argument is the program
	LocalAddr  string // address advertised to the other nodes
	MasterPort int    // MASTER_PORT on node rank 0 (0: a free port)

	// flags lists the flag names AddFlags registered, for ApplyEnv.
	flags []string
}

// DefaultOptions are torchrun's defaults where it has the same option.
func DefaultOptions() Options {
	return Options{
		Nnodes: "1", NprocPerNode: "1", CPUWorkers: 1, NodeRank: -1, Role: "default",
		RdzvBackend: "etcd", RdzvLastCall: 30 * time.Second, RdzvJoinTimeout: 600 * time.Second,
		RdzvDialTimeout: 5 * time.Second, RdzvTTL: 10 * time.Second,
		MonitorInterval: 5 * time.Second, GracePeriod: 30 * time.Second,
		ExitBarrierTimeout: 300 * time.Second, RunDir: "lrtrain-run",
	}
}

// AddFlags registers every option on fs, with o's current values as the
// defaults. Flag names also accept underscores (--nproc_per_node), as
// torchrun's do.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	str := func(p *string, name, usage string) {
		fs.StringVar(p, name, *p, usage)
		o.flags = append(o.flags, name)
	}
	num := func(p *int, name, usage string) {
		fs.IntVar(p, name, *p, usage)
		o.flags = append(o.flags, name)
	}
	dur := func(p *time.Duration, name, usage string) {
		fs.Var((*seconds)(p), name, usage+" (Go duration or seconds)")
		o.flags = append(o.flags, name)
	}
	flag := func(p *bool, name, usage string) {
		fs.BoolVar(p, name, *p, usage)
		o.flags = append(o.flags, name)
	}
	str(&o.Nnodes, "nnodes", `number of nodes, "N" or elastic "MIN:MAX"`)
	str(&o.NprocPerNode, "nproc-per-node", `workers per node: N, "gpu" (one per GPU), "cpu" (--cpu-workers) or "auto" (gpu if any, else cpu)`)
	num(&o.CPUWorkers, "cpu-workers", `workers of "cpu", and of "auto" on a node without GPUs`)
	num(&o.NodeRank, "node-rank", "orders this node among the others (node ranks follow it when all nodes give one); -1: by agent id")
	str(&o.Role, "role", "worker role name (ROLE_NAME)")
	str(&o.RdzvBackend, "rdzv-backend", `rendezvous backend: "etcd" or "etcd-v3" ("etcd-v2" is served by etcd v3)`)
	str(&o.RdzvEndpoint, "rdzv-endpoint", "etcd endpoint(s), host:port[,host:port...]")
	str(&o.RdzvID, "rdzv-id", "job id shared by all nodes of the job")
	dur(&o.RdzvLastCall, "rdzv-last-call", "how long a round with at least MIN nodes waits for more")
	dur(&o.RdzvJoinTimeout, "rdzv-join-timeout", "give up when no round forms within this time")
	dur(&o.RdzvDialTimeout, "rdzv-dial-timeout", "give up when etcd does not answer within this time (at start, and when joining again after the session was lost)")
	dur(&o.RdzvTTL, "rdzv-ttl", "lease TTL of the launcher's and the workers' sessions: a dead node, or an etcd that stopped answering, is noticed within it (+1 s)")
	str(&o.RdzvCACert, "rdzv-cacert", "CA certificate (PEM) that signed etcd's certificate; enables TLS")
	str(&o.RdzvCert, "rdzv-cert", "client certificate (PEM) for etcd")
	str(&o.RdzvKey, "rdzv-key", "client key (PEM) for etcd")
	str(&o.RdzvUser, "rdzv-user", "etcd user")
	str(&o.RdzvPassword, "rdzv-password", "etcd password (prefer PET_RDZV_PASSWORD: command lines are visible to all users)")
	flag(&o.Standalone, "standalone", "single node: run an embedded etcd on loopback (ignores --rdzv-endpoint)")
	num(&o.MaxRestarts, "max-restarts", "restarts of the worker group after a worker failure before giving up")
	dur(&o.MonitorInterval, "monitor-interval", "how often the launcher logs its workers' state at debug level (exits and rendezvous events are acted on at once)")
	dur(&o.GracePeriod, "grace-period", "time between SIGTERM and SIGKILL when stopping workers")
	dur(&o.ExitBarrierTimeout, "exit-barrier-timeout", "how long a node whose workers finished waits for the other nodes")
	str(&o.RunDir, "run-dir", "directory for logs/round<R>/rank<k>.log and the standalone etcd's data")
	str(&o.Tee, "tee", `global ranks whose output is also shown on the console, "0,3" or "all"`)
	str(&o.Exec, "exec", "run this program with the worker arguments instead of lrtrain itself")
	flag(&o.NoPython, "no-python", "the first worker argument is the program to run (torchrun's --no-python)")
	str(&o.LocalAddr, "local-addr", "address other nodes reach this node at (default: the one that routes to etcd)")
	num(&o.MasterPort, "master-port", "MASTER_PORT chosen by node rank 0 (0: a free port each round)")
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
}

// EnvName is the torchrun variable that sets a flag: PET_ and the name in
// upper case with '-' as '_' (nproc-per-node: PET_NPROC_PER_NODE).
func EnvName(flag string) string {
	return "PET_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// ApplyEnv sets every flag registered by AddFlags that was not given on the
// command line from its PET_* variable, when that is set and not empty, so
// flags win over the environment. It returns the variables it used.
func (o *Options) ApplyEnv(fs *pflag.FlagSet, lookup func(string) (string, bool)) ([]string, error) {
	var used []string
	for _, name := range o.flags {
		f := fs.Lookup(name)
		if f == nil || f.Changed {
			continue
		}
		env := EnvName(name)
		v, ok := lookup(env)
		if !ok || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return used, fmt.Errorf("%w: %s=%q: %w", ErrConfig, env, v, err)
		}
		used = append(used, env)
	}
	return used, nil
}

// seconds is a duration flag that also takes a bare number of seconds, as
// torchrun's PET_MONITOR_INTERVAL=0.1 or PET_RDZV_LAST_CALL=30 do.
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }
func (s *seconds) Type() string   { return "duration" }

func (s *seconds) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 {
			return fmt.Errorf("negative duration %q", v)
		}
		*s = seconds(time.Duration(f * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration (30s, 1m) or seconds (30): %q", v)
	}
	if d < 0 {
		return fmt.Errorf("negative duration %q", v)
	}
	*s = seconds(d)
	return nil
}
