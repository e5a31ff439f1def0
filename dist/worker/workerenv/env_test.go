package workerenv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// full is an environment with every field set, as the launcher of a two-node,
// TLS, password-protected job on GPUs writes it.
func full() Env {
	return Env{
		Rank: 5, LocalRank: 1, WorldSize: 8, LocalWorldSize: 4, NodeRank: 1, NumNodes: 2, Role: "trainer",
		MasterAddr: "10.0.0.1", MasterPort: 29500, Restart: 2, MaxRestarts: 3,
		Endpoints: []string{"a:2379", "b:2379"}, Job: "j", Round: 7, CACert: "ca.pem", User: "u", Password: "p",
		TTL: 3 * time.Second, DialTimeout: 1500 * time.Millisecond, CUDAVisibleDevices: "1", OMPThreads: 4,
	}
}

// vars turns w.Vars() into a map, failing on a duplicate or malformed entry.
func vars(t *testing.T, w Env) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, kv := range w.Vars() {
		k, v, ok := strings.Cut(kv, "=")
		if _, dup := env[k]; dup || !ok {
			t.Fatalf("entry %q: duplicate or without '='", kv)
		}
		env[k] = v
	}
	return env
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestEnvRoundTrips(t *testing.T) {
	w := full()
	env := vars(t, w)
	for k, v := range map[string]string{VarTorchRestartCount: "2", VarRoleRank: "5", VarGroupRank: "1",
		VarTorchRunID: "j", VarRdzvEndpoints: "a:2379,b:2379", VarRdzvTTL: "3s"} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	got, err := Read(lookupIn(env))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", w) {
		t.Errorf("round trip\n got %+v\nwant %+v", got, w)
	}
	if !Launched(lookupIn(env)) {
		t.Error("Launched is false with LRTRAIN_RDZV_JOB set")
	}
	delete(env, VarRdzvJob)
	if Launched(lookupIn(env)) {
		t.Error("Launched is true without LRTRAIN_RDZV_JOB")
	}
}

// Unset optional variables stay out of the environment and read back as zero.
func TestOptionalVarsAreLeftOut(t *testing.T) {
	w := Env{Rank: 0, LocalRank: 0, WorldSize: 1, LocalWorldSize: 1, NumNodes: 1,
		MasterAddr: "127.0.0.1", MasterPort: 1, Endpoints: []string{"127.0.0.1:2379"}, Job: "j"}
	env := vars(t, w)
	for _, k := range []string{VarRdzvCACert, VarRdzvCert, VarRdzvKey, VarRdzvUser, VarRdzvPassword,
		VarRdzvTTL, VarRdzvDialTimeout, VarCUDAVisible, VarOMPThreads} {
		if v, ok := env[k]; ok {
			t.Errorf("%s=%q is set; want it left out", k, v)
		}
	}
	got, err := Read(lookupIn(env))
	if err != nil {
		t.Fatal(err)
	}
	if got.TTL != 0 || got.DialTimeout != 0 || got.OMPThreads != 0 || len(got.RdzvOptions()) != 1 {
		t.Errorf("got %+v with %d rdzv options; want zero durations and the endpoints alone", got, len(got.RdzvOptions()))
	}
}

// Every missing or malformed variable is named in the error, which wraps ErrInvalid.
func TestReadNamesTheBadVariable(t *testing.T) {
	for _, c := range []struct {
		name, value string // value "<unset>": removed
		want        string
	}{
		{VarRank, "<unset>", `RANK=""`},
		{VarRank, "-1", `RANK="-1"`},
		{VarWorldSize, "<unset>", `WORLD_SIZE=""`},
		{VarWorldSize, "two", `WORLD_SIZE="two"`},
		{VarLocalRank, "x", `LOCAL_RANK="x"`},
		{VarLocalWorldSize, "", `LOCAL_WORLD_SIZE=""`},
		{VarGroupRank, "<unset>", `GROUP_RANK=""`},
		{VarGroupWorldSize, "1.5", `GROUP_WORLD_SIZE="1.5"`},
		{VarMasterPort, "http", `MASTER_PORT="http"`},
		{VarRestartCount, "<unset>", `LRTRAIN_RESTART_COUNT=""`},
		{VarTorchMaxRestarts, "-3", `TORCHELASTIC_MAX_RESTARTS="-3"`},
		{VarRdzvRound, "<unset>", `LRTRAIN_RDZV_ROUND=""`},
		{VarRdzvRound, "r7", `LRTRAIN_RDZV_ROUND="r7"`},
		{VarRdzvTTL, "3", `LRTRAIN_RDZV_TTL="3"`},
		{VarRdzvTTL, "-2s", `LRTRAIN_RDZV_TTL="-2s"`},
		{VarRdzvDialTimeout, "soon", `LRTRAIN_RDZV_DIAL_TIMEOUT="soon"`},
		{VarMasterAddr, "<unset>", "MASTER_ADDR, LRTRAIN_RDZV_JOB and LRTRAIN_RDZV_ENDPOINTS must be set"},
		{VarRdzvJob, "", "MASTER_ADDR, LRTRAIN_RDZV_JOB and LRTRAIN_RDZV_ENDPOINTS must be set"},
		{VarRdzvEndpoints, "<unset>", "MASTER_ADDR, LRTRAIN_RDZV_JOB and LRTRAIN_RDZV_ENDPOINTS must be set"},
		{VarRank, "8", "RANK=8 of WORLD_SIZE=8"},
		{VarLocalRank, "4", "LOCAL_RANK=4 of LOCAL_WORLD_SIZE=4"},
	} {
		env := vars(t, full())
		if c.value == "<unset>" {
			delete(env, c.name)
		} else {
			env[c.name] = c.value
		}
		_, err := Read(lookupIn(env))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s=%q: error %v; want ErrInvalid naming %s", c.name, c.value, err, c.want)
		}
	}
}

// Two bad variables are both named, so one run of the worker shows every mistake.
func TestReadNamesEveryBadVariable(t *testing.T) {
	env := vars(t, full())
	delete(env, VarWorldSize)
	env[VarMasterPort] = "x"
	_, err := Read(lookupIn(env))
	if err == nil || !strings.Contains(err.Error(), "WORLD_SIZE") || !strings.Contains(err.Error(), "MASTER_PORT") {
		t.Fatalf("error %v; want WORLD_SIZE and MASTER_PORT named", err)
	}
}

// The options carry TLS and credentials only when the launcher set them.
func TestRdzvOptionsFollowTheEnvironment(t *testing.T) {
	w := full() // endpoints, TTL, dial timeout, TLS, auth
	if n := len(w.RdzvOptions()); n != 5 {
		t.Errorf("%d options, want 5", n)
	}
	w.CACert, w.User = "", ""
	if n := len(w.RdzvOptions()); n != 3 {
		t.Errorf("%d options without TLS and auth, want 3", n)
	}
}
