package launch

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// parse applies command-line args and then the PET_* variables of env, as
// `lrtrain launch` does.
func parse(t *testing.T, args []string, env map[string]string) (Options, []string, []string, error) {
	t.Helper()
	o := DefaultOptions()
	fs := pflag.NewFlagSet("launch", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	used, err := o.ApplyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return o, fs.Args(), used, err
}

func TestPETEnvironmentSetsFlagsThatWereNotGiven(t *testing.T) {
	o, rest, used, err := parse(t,
		[]string{"--max-restarts", "2", "--nproc_per_node", "3", "--", "train", "--config", "c.yaml"},
		map[string]string{
			"PET_NNODES": "2:4", "PET_NPROC_PER_NODE": "8", "PET_MAX_RESTARTS": "7",
			"PET_RDZV_ENDPOINT": "10.0.0.1:2379", "PET_RDZV_ID": "job-1", "PET_RDZV_BACKEND": "etcd-v3",
			"PET_STANDALONE": "0", "PET_MONITOR_INTERVAL": "0.1", "PET_RDZV_LAST_CALL": "1m",
			"PET_NODE_RANK": "3", "PET_TEE": "", // empty: ignored
		})
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		Nnodes: "2:4", NprocPerNode: "3", MaxRestarts: 2, RdzvEndpoint: "10.0.0.1:2379", RdzvID: "job-1",
		RdzvBackend: "etcd-v3", MonitorInterval: 100 * time.Millisecond, RdzvLastCall: time.Minute, NodeRank: 3,
	}
	got := Options{
		Nnodes: o.Nnodes, NprocPerNode: o.NprocPerNode, MaxRestarts: o.MaxRestarts, RdzvEndpoint: o.RdzvEndpoint,
		RdzvID: o.RdzvID, RdzvBackend: o.RdzvBackend, MonitorInterval: o.MonitorInterval,
		RdzvLastCall: o.RdzvLastCall, NodeRank: o.NodeRank,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("options\n got %+v\nwant %+v", got, want)
	}
	if o.Standalone {
		t.Error("PET_STANDALONE=0 turned standalone on")
	}
	if strings.Join(rest, " ") != "train --config c.yaml" {
		t.Errorf("worker args %q", rest)
	}
	for _, v := range used {
		if v == "PET_NPROC_PER_NODE" || v == "PET_MAX_RESTARTS" || v == "PET_TEE" {
			t.Errorf("%s used although the flag was given or the value empty", v)
		}
	}
}

func TestPETEnvironmentErrorsNameTheVariable(t *testing.T) {
	for name, value := range map[string]string{
		"PET_MAX_RESTARTS": "many", "PET_STANDALONE": "maybe", "PET_MONITOR_INTERVAL": "-1",
	} {
		_, _, _, err := parse(t, nil, map[string]string{name: value})
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: err = %v", name, value, err)
		}
	}
}

func TestEnvNameFollowsTorchrun(t *testing.T) {
	for flag, env := range map[string]string{
		"nproc-per-node": "PET_NPROC_PER_NODE", "rdzv-endpoint": "PET_RDZV_ENDPOINT", "standalone": "PET_STANDALONE",
	} {
		if got := EnvName(flag); got != env {
			t.Errorf("EnvName(%s) = %s, want %s", flag, got, env)
		}
	}
}

func resolve(t *testing.T, h Host, args ...string) (Config, error) {
	t.Helper()
	o, rest, _, err := parse(t, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) == 0 && o.Exec == "" && !o.NoPython {
		rest = []string{"train"} // a worker command, which lrtrain launch requires
	}
	return Resolve(o, rest, h)
}

func TestResolveRendezvousChoices(t *testing.T) {
	cpu := Host{CPUs: 8}
	cases := []struct {
		args    []string
		wantErr error
		check   func(c Config) bool
	}{
		{[]string{"--rdzv-backend", "c10d"}, ErrBackend, nil},
		{[]string{"--rdzv-backend", "static"}, ErrBackend, nil},
		{[]string{"--rdzv-backend", "zookeeper"}, ErrBackend, nil},
		{[]string{"--nnodes", "2:1"}, ErrConfig, nil},
		{[]string{"--nnodes", "0"}, ErrConfig, nil},
		{[]string{"--nnodes", "2"}, ErrConfig, nil},                              // no endpoint
		{[]string{"--nnodes", "2", "--rdzv-endpoint", "h:2379"}, ErrConfig, nil}, // no job id
		{[]string{"--rdzv-cert", "c.pem", "--standalone"}, ErrConfig, nil},       // cert without key
		{[]string{"--max-restarts", "-1"}, ErrConfig, nil},
		{[]string{"--tee", "x"}, ErrConfig, nil},
		{[]string{"--exec", "/nonexistent/prog"}, ErrConfig, nil},
		{[]string{}, nil, func(c Config) bool { // one node, no endpoint: standalone
			return c.Standalone && c.Job == "standalone" && len(c.Notes) == 1
		}},
		{[]string{"--standalone", "--nnodes", "3", "--rdzv-endpoint", "h:1"}, nil, func(c Config) bool {
			return c.Standalone && c.MaxNodes == 1 && len(c.Endpoints) == 0 && len(c.Notes) == 2
		}},
		{[]string{"--nnodes", "1:3", "--rdzv-endpoint", "a:1, b:2", "--rdzv-id", "j", "--rdzv-backend", "etcd-v2"}, nil,
			func(c Config) bool {
				return c.MinNodes == 1 && c.MaxNodes == 3 && fmt.Sprint(c.Endpoints) == "[a:1 b:2]" &&
					len(c.Notes) == 1 && strings.Contains(c.Notes[0], "v3")
			}},
		{[]string{"--tee", "0,3"}, nil, func(c Config) bool { return fmt.Sprint(c.Tee) == "[0 3]" && !c.TeeAll }},
		{[]string{"--no-python", "--", "true", "x"}, nil, func(c Config) bool {
			return strings.HasSuffix(c.Program, "/true") && fmt.Sprint(c.Args) == "[x]"
		}},
	}
	for _, tc := range cases {
		c, err := resolve(t, cpu, tc.args...)
		switch {
		case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
			t.Errorf("%q: err = %v, want %v", tc.args, err, tc.wantErr)
		case tc.wantErr == nil && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.check != nil && !tc.check(c):
			t.Errorf("%q: unexpected config %+v", tc.args, c)
		}
	}
	_, err := resolve(t, cpu, "--rdzv-backend", "c10d")
	if !strings.Contains(err.Error(), "--standalone") || ExitCode(err) != ExitUsage {
		t.Errorf("c10d error %q does not say what to use instead, or exit code %d", err, ExitCode(err))
	}
}

func TestResolveWorkerCount(t *testing.T) {
	gpu4 := Host{CPUs: 32, GPUs: []string{"0", "1", "2", "3"}}
	none := Host{CPUs: 6, GPUErr: errors.New("NVML: library not found")}
	cases := []struct {
		host   Host
		args   []string
		nproc  int
		device string
		gpus   string
		omp    int
	}{
		{gpu4, []string{"--nproc-per-node", "auto"}, 4, DeviceGPU, "[0 1 2 3]", 0},
		{gpu4, []string{"--nproc-per-node", "gpu"}, 4, DeviceGPU, "[0 1 2 3]", 0},
		{gpu4, []string{"--nproc-per-node", "2"}, 2, DeviceGPU, "[0 1]", 0},
		{gpu4, []string{"--nproc-per-node", "8"}, 8, DeviceCPU, "[]", 4},
		{gpu4, []string{"--nproc-per-node", "cpu", "--cpu-workers", "2"}, 2, DeviceCPU, "[]", 16},
		{none, []string{"--nproc-per-node", "auto"}, 1, DeviceCPU, "[]", 6},
		{none, []string{"--nproc-per-node", "auto", "--cpu-workers", "4"}, 4, DeviceCPU, "[]", 1},
		{none, []string{"--nproc-per-node", "3"}, 3, DeviceCPU, "[]", 2},
	}
	for _, tc := range cases {
		c, err := resolve(t, tc.host, tc.args...)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if c.Nproc != tc.nproc || c.Device != tc.device || fmt.Sprint(c.GPUs) != tc.gpus || c.OMPThreads != tc.omp {
			t.Errorf("%q: %d %s %v omp %d, want %d %s %s omp %d", tc.args,
				c.Nproc, c.Device, c.GPUs, c.OMPThreads, tc.nproc, tc.device, tc.gpus, tc.omp)
		}
	}
	_, err := resolve(t, none, "--nproc-per-node", "gpu")
	if !errors.Is(err, ErrNoGPU) || !strings.Contains(err.Error(), "library not found") {
		t.Errorf("gpu without GPUs: %v", err)
	}
	for _, bad := range []string{"0", "-2", "many"} {
		if _, err := resolve(t, none, "--nproc-per-node", bad); !errors.Is(err, ErrConfig) {
			t.Errorf("--nproc-per-node %s: %v", bad, err)
		}
	}
}

func TestVisibleGPUsHonourCUDAVisibleDevices(t *testing.T) {
	unset := func(string) (string, bool) { return "", false }
	set := func(string) (string, bool) { return "", true }
	if got := visibleGPUs(2, "", unset); fmt.Sprint(got) != "[0 1]" {
		t.Errorf("unset: %v", got)
	}
	if got := visibleGPUs(8, "3, GPU-abc ,5", set); fmt.Sprint(got) != "[3 GPU-abc 5]" {
		t.Errorf("list: %v", got)
	}
	if got := visibleGPUs(8, "", set); len(got) != 0 {
		t.Errorf("empty: %v", got)
	}
}

func TestMergeEnvKeepsTheUsersThreadCount(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "RANK=9", "OMP_NUM_THREADS=3"}, []string{"RANK=1", "OMP_NUM_THREADS=8"})
	if fmt.Sprint(got) != "[PATH=/bin OMP_NUM_THREADS=3 RANK=1]" {
		t.Errorf("got %v", got)
	}
}

func TestPrefixWriterPrefixesWholeLines(t *testing.T) {
	var b strings.Builder
	p := newPrefixWriter(&b, "[rank0]: ")
	for _, s := range []string{"a", "b\nc\n", "d"} {
		if n, err := p.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatal(n, err)
		}
	}
	if b.String() != "[rank0]: ab\n[rank0]: c\n" {
		t.Errorf("got %q", b.String())
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, 0},
		{fmt.Errorf("x: %w", ErrConfig), 2},
		{fmt.Errorf("%w: %w", ErrInterrupted, &Interrupted{Signal: syscall.SIGTERM}), 143},
		{fmt.Errorf("%w: %w", ErrInterrupted, &Interrupted{Signal: syscall.SIGINT}), 130},
		{fmt.Errorf("%w: %w", ErrRestartsExhausted, &WorkerFailure{Rank: 1}), 1},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// Flags that could only fail later fail at once, as usage errors naming the flag: an
// endpoint whose port is not a port (which would look like an etcd that does not answer,
// after the dial timeout) and a launch without a worker command (whose workers would run
// lrtrain with no arguments: its help, exit 0).
func TestUsageErrorsFailAtOnce(t *testing.T) {
	cpu := Host{CPUs: 4}
	for _, ep := range []string{"127.0.0.1:notaport", "127.0.0.1:99999", "h:0", "h", ":2379", "ftp://h:1", "a:1,b:x"} {
		_, err := resolve(t, cpu, "--nnodes", "2", "--rdzv-id", "j", "--rdzv-endpoint", ep)
		if !errors.Is(err, ErrConfig) || ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--rdzv-endpoint") {
			t.Errorf("--rdzv-endpoint %s: err = %v (exit %d)", ep, err, ExitCode(err))
		}
	}
	for _, ep := range []string{"h:2379", "http://10.0.0.1:2379", "https://[::1]:2379/", "unix:///run/etcd.sock", "a:1, b:2"} {
		if _, err := resolve(t, cpu, "--nnodes", "2", "--rdzv-id", "j", "--rdzv-endpoint", ep); err != nil {
			t.Errorf("--rdzv-endpoint %s: %v", ep, err)
		}
	}
	o, rest, _, err := parse(t, []string{"--standalone"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Resolve(o, rest, cpu)
	if !errors.Is(err, ErrConfig) || ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "no worker command") {
		t.Errorf("no worker command: err = %v", err)
	}
}
