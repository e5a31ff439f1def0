package launch

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Devices a node's workers run on.
const (
	DeviceCPU = "cpu"
	DeviceGPU = "gpu"
)

// Config is a checked launcher configuration for one node, made by Resolve.
type Config struct {
	MinNodes, MaxNodes int
	Nproc              int      // workers on this node
	Device             string   // DeviceCPU or DeviceGPU
	GPUs               []string // CUDA_VISIBLE_DEVICES of local rank i (DeviceGPU)
	OMPThreads         int      // OMP_NUM_THREADS of each worker unless already set (0: leave alone)
	NodeRank           int      // -1: nodes ordered by agent id
	Role               string

	Standalone  bool     // run an embedded etcd on loopback
	Endpoints   []string // etcd endpoints (empty when Standalone)
	Job         string
	LastCall    time.Duration
	JoinTimeout time.Duration
	DialTimeout time.Duration
	TTL         time.Duration
	CACert      string
	Cert, Key   string
	User        string
	Password    string

	MaxRestarts        int
	MonitorInterval    time.Duration
	GracePeriod        time.Duration
	ExitBarrierTimeout time.Duration

	RunDir     string
	TeeAll     bool
	Tee        []int    // global ranks shown on the console
	Program    string   // the worker executable
	Args       []string // its arguments
	LocalAddr  string   // "" : the address that routes to etcd
	MasterPort int      // 0: a free port

	// Notes are warnings from Resolve (options overridden or ignored) for
	// the launcher to log.
	Notes []string
	// Console receives the output of the teed ranks (nil: os.Stdout).
	Console io.Writer
	// Environ is the environment the workers inherit (nil: os.Environ()).
	Environ []string
}

// Host is what Resolve needs to know about the node; DetectHost fills it.
type Host struct {
	GPUs   []string // device ids usable in CUDA_VISIBLE_DEVICES, in order
	GPUErr error    // why no GPU was found (NVML missing, no device)
	CPUs   int
}

// Resolve checks o, fills in what o leaves open (standalone for a single
// node without an endpoint, the worker count from the host, the program)
// and returns the node's configuration. workerArgs are the arguments after
// "--"; without --exec or --no-python they are given to this executable.
func Resolve(o Options, workerArgs []string, h Host) (Config, error) {
	c := Config{
		NodeRank: o.NodeRank, Role: o.Role, Standalone: o.Standalone, Job: o.RdzvID,
		LastCall: o.RdzvLastCall, JoinTimeout: o.RdzvJoinTimeout, DialTimeout: o.RdzvDialTimeout,
		TTL: o.RdzvTTL, CACert: o.RdzvCACert, Cert: o.RdzvCert, Key: o.RdzvKey,
		User: o.RdzvUser, Password: o.RdzvPassword, MaxRestarts: o.MaxRestarts,
		MonitorInterval: o.MonitorInterval, GracePeriod: o.GracePeriod,
		ExitBarrierTimeout: o.ExitBarrierTimeout, RunDir: o.RunDir,
		LocalAddr: o.LocalAddr, MasterPort: o.MasterPort,
	}
	var err error
	if c.Notes, err = checkBackend(o.RdzvBackend); err != nil {
		return c, err
	}
	if c.MinNodes, c.MaxNodes, err = parseNnodes(o.Nnodes); err != nil {
		return c, err
	}
	if err := c.resolveRendezvous(o); err != nil {
		return c, err
	}
	if err := c.resolveWorkers(o.NprocPerNode, o.CPUWorkers, h); err != nil {
		return c, err
	}
	if c.TeeAll, c.Tee, err = parseTee(o.Tee); err != nil {
		return c, err
	}
	if c.Program, c.Args, err = resolveProgram(o.Exec, o.NoPython, workerArgs); err != nil {
		return c, err
	}
	return c, c.check()
}

func checkBackend(backend string) ([]string, error) {
	switch strings.ToLower(backend) {
	case "", "etcd", "etcd-v3":
		return nil, nil
	case "etcd-v2":
		return []string{"rendezvous backend etcd-v2 is served by etcd's v3 API (lrtrain does not use the removed v2 API)"}, nil
	case "c10d", "static":
		return nil, fmt.Errorf("%w: %q needs torch's TCPStore; lrtrain meets over etcd v3: use --rdzv-backend etcd with --rdzv-endpoint, or --standalone on a single node",
			ErrBackend, backend)
	}
	return nil, fmt.Errorf("%w: %q (want etcd, etcd-v3 or etcd-v2)", ErrBackend, backend)
}

// parseNnodes reads "N" or "MIN:MAX".
func parseNnodes(s string) (int, int, error) {
	lo, hi, elastic := strings.Cut(strings.TrimSpace(s), ":")
	minN, err1 := strconv.Atoi(lo)
	maxN, err2 := minN, error(nil)
	if elastic {
		maxN, err2 = strconv.Atoi(hi)
	}
	if err1 != nil || err2 != nil || minN < 1 || maxN < minN {
		return 0, 0, fmt.Errorf("%w: --nnodes %q: want N or MIN:MAX with 1 <= MIN <= MAX", ErrConfig, s)
	}
	return minN, maxN, nil
}

func (c *Config) resolveRendezvous(o Options) error {
	if !c.Standalone && o.RdzvEndpoint == "" {
		if c.MaxNodes > 1 {
			return fmt.Errorf("%w: --nnodes %s needs --rdzv-endpoint (PET_RDZV_ENDPOINT), or --standalone for one node",
				ErrConfig, o.Nnodes)
		}
		c.Standalone = true
		c.Notes = append(c.Notes, "no --rdzv-endpoint for a single node: running standalone (embedded etcd on loopback)")
	}
	if c.Standalone {
		if o.RdzvEndpoint != "" {
			c.Notes = append(c.Notes, fmt.Sprintf("--standalone ignores --rdzv-endpoint %s", o.RdzvEndpoint))
		}
		if c.MaxNodes != 1 {
			c.Notes = append(c.Notes, fmt.Sprintf("--standalone runs one node: --nnodes %s becomes 1", o.Nnodes))
			c.MinNodes, c.MaxNodes = 1, 1
		}
		if c.Job == "" {
			c.Job = "standalone"
		}
		return nil
	}
	for _, ep := range strings.Split(o.RdzvEndpoint, ",") {
		if ep = strings.TrimSpace(ep); ep == "" {
			continue
		}
		if err := checkEndpoint(ep); err != nil {
			return fmt.Errorf("%w: --rdzv-endpoint %q (PET_RDZV_ENDPOINT): %s: %w", ErrConfig, o.RdzvEndpoint, ep, err)
		}
		c.Endpoints = append(c.Endpoints, ep)
	}
	if c.Job == "" {
		return fmt.Errorf("%w: --rdzv-endpoint needs --rdzv-id (PET_RDZV_ID), the same on every node of the job", ErrConfig)
	}
	return nil
}

// checkEndpoint accepts what etcd's client dials: host:port, optionally after http:// or
// https://, or a unix socket. A port that is not a number would only show as an etcd
// that does not answer, after the dial timeout.
func checkEndpoint(ep string) error {
	hostport := ep
	if scheme, rest, ok := strings.Cut(ep, "://"); ok {
		switch strings.ToLower(scheme) {
		case "http", "https":
			hostport = strings.TrimSuffix(rest, "/")
		case "unix", "unixs":
			return nil
		default:
			return fmt.Errorf("scheme %q: want http://, https:// or none", scheme)
		}
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return errors.New("want host:port (etcd's client port is usually 2379)")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if host == "" {
		return errors.New("no host before the port")
	}
	return nil
}

// resolveWorkers turns --nproc-per-node into a count and a device.
func (c *Config) resolveWorkers(spec string, cpuWorkers int, h Host) error {
	if cpuWorkers < 1 {
		return fmt.Errorf("%w: --cpu-workers %d < 1", ErrConfig, cpuWorkers)
	}
	gpus := len(h.GPUs)
	switch spec = strings.ToLower(strings.TrimSpace(spec)); spec {
	case "gpu":
		if gpus == 0 {
			return fmt.Errorf("%w: --nproc-per-node gpu: %v", ErrNoGPU, h.GPUErr)
		}
		c.Nproc, c.Device = gpus, DeviceGPU
	case "auto":
		c.Nproc, c.Device = gpus, DeviceGPU
		if gpus == 0 {
			c.Nproc, c.Device = cpuWorkers, DeviceCPU
		}
	case "cpu":
		c.Nproc, c.Device = cpuWorkers, DeviceCPU
	default:
		n, err := strconv.Atoi(spec)
		if err != nil || n < 1 {
			return fmt.Errorf("%w: --nproc-per-node %q: want a count >= 1, auto, gpu or cpu", ErrConfig, spec)
		}
		c.Nproc, c.Device = n, DeviceCPU
		switch {
		case gpus >= n:
			c.Device = DeviceGPU
		case gpus > 0:
			c.Notes = append(c.Notes, fmt.Sprintf(
				"%d workers but %d GPUs: CUDA_VISIBLE_DEVICES is left alone", n, gpus))
		}
	}
	if c.Device == DeviceGPU {
		c.GPUs = h.GPUs[:c.Nproc]
	} else {
		c.OMPThreads = max(1, h.CPUs/c.Nproc)
	}
	return nil
}

func parseTee(s string) (bool, []int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return false, nil, nil
	}
	if strings.EqualFold(s, "all") {
		return true, nil, nil
	}
	var ranks []int
	for _, f := range strings.Split(s, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r < 0 {
			return false, nil, fmt.Errorf("%w: --tee %q: want ranks like 0,3 or all", ErrConfig, s)
		}
		ranks = append(ranks, r)
	}
	return false, ranks, nil
}

func resolveProgram(execPath string, noPython bool, args []string) (string, []string, error) {
	switch {
	case execPath != "" && noPython:
		return "", nil, fmt.Errorf("%w: --exec and --no-python both name the program", ErrConfig)
	case noPython:
		if len(args) == 0 {
			return "", nil, fmt.Errorf("%w: --no-python needs the program as the first worker argument", ErrConfig)
		}
		execPath, args = args[0], args[1:]
	case execPath == "" && len(args) == 0:
		return "", nil, fmt.Errorf("%w: no worker command: give the workers' lrtrain arguments after --, "+
			"e.g. lrtrain launch --nproc-per-node 2 -- train --config cfg.yaml (or a program with --exec)", ErrConfig)
	case execPath == "":
		self, err := os.Executable()
		if err != nil {
			return "", nil, fmt.Errorf("%w: find this executable: %w", ErrConfig, err)
		}
		return self, args, nil
	}
	p, err := exec.LookPath(execPath)
	if err != nil {
		return "", nil, fmt.Errorf("%w: worker program: %w", ErrConfig, err)
	}
	return p, args, nil
}

func (c *Config) check() error {
	switch {
	case c.MaxRestarts < 0:
		return fmt.Errorf("%w: --max-restarts %d < 0", ErrConfig, c.MaxRestarts)
	case c.MonitorInterval <= 0:
		return fmt.Errorf("%w: --monitor-interval must be positive", ErrConfig)
	case c.LastCall < 0 || c.JoinTimeout <= 0 || c.DialTimeout <= 0 || c.TTL <= 0 || c.ExitBarrierTimeout <= 0:
		return fmt.Errorf("%w: rendezvous timeouts and TTL must be positive", ErrConfig)
	case (c.Cert == "") != (c.Key == ""):
		return fmt.Errorf("%w: --rdzv-cert and --rdzv-key go together", ErrConfig)
	case c.RunDir == "":
		return fmt.Errorf("%w: empty --run-dir", ErrConfig)
	case c.MasterPort < 0 || c.MasterPort > 65535:
		return fmt.Errorf("%w: --master-port %d", ErrConfig, c.MasterPort)
	case c.Role == "":
		return fmt.Errorf("%w: empty --role", ErrConfig)
	}
	return nil
}

// String describes the configuration, one "name: value" per line (no
// password), as the launcher logs it at start.
func (c Config) String() string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%s: %v\n", k, v) }
	rdzv := strings.Join(c.Endpoints, ",")
	if c.Standalone {
		rdzv = "standalone (embedded etcd)"
	}
	line("nodes", fmt.Sprintf("%d:%d", c.MinNodes, c.MaxNodes))
	line("workers", fmt.Sprintf("%d %s", c.Nproc, c.Device))
	if c.Device == DeviceGPU {
		line("gpus", strings.Join(c.GPUs, ","))
	} else {
		line("omp threads", c.OMPThreads)
	}
	line("rendezvous", rdzv)
	line("job", c.Job)
	line("max restarts", c.MaxRestarts)
	line("last call", c.LastCall)
	line("grace period", c.GracePeriod)
	line("run dir", c.RunDir)
	return b.String()
}
