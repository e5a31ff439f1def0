package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/dist/worker/workerenv"
)

// A launched worker asked for NCCL on a machine whose libtorch sees no GPU is refused
// before it opens a rendezvous session, with a usage error (exit 2) saying why and what
// to use instead; one that asks for a GPU that is not there is refused alike.
func TestWorkerRefusesNCCLWithoutAGPU(t *testing.T) {
	if gotch.CUDA.IsAvailable() {
		t.Skip("a GPU is visible here; the refusal is for CPU machines")
	}
	we := workerenv.Env{Rank: 1, LocalRank: 1, WorldSize: 2, LocalWorldSize: 2, NumNodes: 1,
		MasterAddr: "127.0.0.1", MasterPort: 1, Job: "job", Endpoints: []string{"127.0.0.1:1"}}
	for _, kv := range we.Vars() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	for _, c := range []struct {
		backend, device, want string
	}{
		{"nccl", "auto", "dist.backend nccl needs a GPU"},
		{"nccl", "cuda", "no CUDA device"},
		{"auto", "cuda:1", "no CUDA device"},
	} {
		cfg := config.Default()
		cfg.Dist.Backend, cfg.Train.Device = c.backend, c.device
		wg, err := workerGroups(context.Background(), cfg, func(error) {})
		g := wg.DP
		var u usageError
		if g != nil || !errors.As(err, &u) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("backend %s, device %s: group %v, error %v; want a usage error with %q", c.backend, c.device, g, err, c.want)
		}
	}
}

// lrtrain env says where train.device auto puts a run and which backend it gets.
func TestEnvReportsTheDevice(t *testing.T) {
	var b bytes.Buffer
	if err := printEnv(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	want := "cpu (dist.backend auto: gloo)"
	if gotch.CUDA.IsAvailable() {
		want = "cuda:0 (dist.backend auto: nccl)"
	}
	for _, line := range []string{"train.device auto  " + want, "phi op  ", "libtorch  "} {
		if !strings.Contains(out, line) {
			t.Errorf("env output lacks %q:\n%s", line, out)
		}
	}
}
