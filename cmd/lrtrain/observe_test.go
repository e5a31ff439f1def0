package main

import (
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/metrics/tfevents"
	"github.com/lrtrain/lrtrain/train"
)

// records reads metrics.jsonl: the step records by step and the evaluation records by step.
func records(t *testing.T, run string) (steps, evals map[int64]map[string]float64) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(run, train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	steps, evals = map[int64]map[string]float64{}, map[int64]map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var rec map[string]float64
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if _, ok := rec["eval_loss"]; ok {
			evals[int64(rec["step"])] = rec
		} else {
			steps[int64(rec["step"])] = rec
		}
	}
	return steps, evals
}

// scrapeMetrics GETs the endpoint and parses it with Prometheus' own text parser,
// returning each single-sample family's value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		if !strings.HasPrefix(name, "lrtrain_") || len(f.Metric) != 1 {
			continue
		}
		switch m := f.Metric[0]; f.GetType() {
		case dto.MetricType_GAUGE:
			out[name] = m.Gauge.GetValue()
		case dto.MetricType_COUNTER:
			out[name] = m.Counter.GetValue()
		}
	}
	return out
}

// A run with output.tensorboard and --metrics-addr: the endpoint, scraped at the last
// step while the run is live, holds that step's values, the previous evaluation's loss,
// the committed checkpoint's step and the world; the event file charts every step and
// evaluation of metrics.jsonl and the stable ranks `lrtrain inspect` computes.
func TestTrainChartsTensorBoardAndPrometheus(t *testing.T) {
	cfg, out := trainConfig(t, "")
	var scraped map[string]float64
	var latest, addr string
	hook := withStepHook(func(o *observer, sm train.StepMetrics) {
		if o.prom == nil || sm.Step != 3 {
			return
		}
		scraped, addr = scrapeMetrics(t, o.prom.URL()), o.prom.Addr()
		b, _ := os.ReadFile(filepath.Join(out, "checkpoints", "latest"))
		latest = strings.TrimSpace(string(b))
	})
	code, msg := runCapturedWith(t, []runOption{hook}, "train", "--config", cfg, "--log-json", "--metrics-addr", "127.0.0.1:0",
		"--set", "output.tensorboard=true", "--set", "train.eval_every=2",
		"--set", "data.eval="+abs(t, "../../data/testdata/alpaca_tiny_eval.json"))
	if code != exitOK {
		t.Fatalf("train: exit %d\n%s", code, msg)
	}
	steps, evals := records(t, out)
	if len(steps) != 3 || len(evals) != 2 || evals[2] == nil || evals[3] == nil {
		t.Fatalf("metrics.jsonl: %d steps, evaluations at %v", len(steps), evals)
	}

	// Prometheus, at step 3 (its checkpoint is saved after the hook: step 2's is the last).
	if scraped == nil {
		t.Fatal("the endpoint was not scraped at step 3")
	}
	last := steps[3]
	tokens := steps[1]["tokens"] + steps[2]["tokens"] + steps[3]["tokens"]
	for name, want := range map[string]float64{"lrtrain_step": 3, "lrtrain_loss": last["loss"], "lrtrain_learning_rate": last["lr"],
		"lrtrain_grad_norm": last["grad_norm"], "lrtrain_tokens_total": tokens, "lrtrain_eval_loss": evals[2]["eval_loss"],
		"lrtrain_eval_step": 2, "lrtrain_last_checkpoint_step": 2, "lrtrain_world_size": 1, "lrtrain_restarts": 0} {
		if got, ok := scraped[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if latest != "step-000002" {
		t.Errorf("latest checkpoint at the scrape: %q", latest)
	}
	// metrics.jsonl rounds tokens/s to 0.1.
	if got := scraped["lrtrain_tokens_per_second"]; math.Abs(got-last["tokens_per_s"]) > 0.05+1e-9*got {
		t.Errorf("lrtrain_tokens_per_second %v, metrics.jsonl %v", got, last["tokens_per_s"])
	}
	if !strings.Contains(msg, "serving Prometheus metrics at http://"+addr+"/metrics") {
		t.Errorf("the console does not name %s:\n%s", addr, msg)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Errorf("the endpoint still listens on %s after the run", addr)
	}

	// TensorBoard: one event file, values rounded to float32 on the wire.
	files, _ := filepath.Glob(filepath.Join(out, "tensorboard", tfevents.FilePrefix+"*"))
	if len(files) != 1 {
		t.Fatalf("event files %v", files)
	}
	evs, err := tfevents.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	charted := map[int64]map[string]float64{}
	for _, e := range evs {
		for _, s := range e.Scalars {
			if charted[e.Step] == nil {
				charted[e.Step] = map[string]float64{}
			}
			charted[e.Step][s.Tag] = s.Value
		}
	}
	f32 := func(v float64) float64 { return float64(float32(v)) }
	for step, rec := range steps {
		for tag, key := range map[string]string{"train/loss": "loss", "train/lr": "lr", "train/grad_norm": "grad_norm",
			"train/peak_cpu_tensor_mib": "peak_cpu_tensor_mib"} {
			if got, ok := charted[step][tag]; !ok || got != f32(rec[key]) {
				t.Errorf("step %d %s = %v (present %v), metrics.jsonl %v", step, tag, got, ok, rec[key])
			}
		}
	}
	for step, rec := range evals {
		for tag, key := range map[string]string{"eval/loss": "eval_loss", "eval/ppl": "eval_ppl"} {
			if got, ok := charted[step][tag]; !ok || got != f32(rec[key]) {
				t.Errorf("evaluation %d %s = %v (present %v), metrics.jsonl %v", step, tag, got, ok, rec[key])
			}
		}
	}

	// Stable ranks at the last evaluation are those of the final checkpoint's adapters.
	insp := t.TempDir()
	if code, msg := runCaptured(t, "inspect", "--run", out, "--out", insp); code != exitOK {
		t.Fatalf("inspect: exit %d\n%s", code, msg)
	}
	raw, err := os.ReadFile(filepath.Join(insp, "adapters.json"))
	if err != nil {
		t.Fatal(err)
	}
	var mods []adapterRecord
	if err := json.Unmarshal(raw, &mods); err != nil || len(mods) == 0 {
		t.Fatalf("adapters.json: %v, %d modules", err, len(mods))
	}
	for _, m := range mods {
		got, ok := charted[3]["stable_rank/"+m.Module]
		// float32 on the wire (relative rounding ≤ 2⁻²⁴); 2⁻²² leaves room for a last-bit
		// difference of the float64 SVD between the two computations.
		if !ok || math.Abs(got-m.SRDelta) > math.Ldexp(m.SRDelta, -22) {
			t.Errorf("stable_rank/%s at step 3 = %v (present %v), inspect %v", m.Module, got, ok, m.SRDelta)
		}
		if _, ok := charted[2]["stable_rank/"+m.Module]; !ok {
			t.Errorf("stable_rank/%s is not charted at the step-2 evaluation", m.Module)
		}
	}
	for _, tag := range []string{"stable_rank_mean/attn", "stable_rank_mean/mlp"} {
		if _, ok := charted[3][tag]; !ok {
			t.Errorf("%s is not charted", tag)
		}
	}
	if !evs[1].Start || evs[1].Step != 1 {
		t.Errorf("the file's second event is %+v, want SessionLog START at step 1", evs[1])
	}

	// Resumed to step 5: a second file, starting with START at step 4, the first step
	// it charts (TensorBoard drops older points from there).
	if code, msg := runCaptured(t, "train", "--config", cfg, "--log-json", "--set", "output.tensorboard=true",
		"--set", "train.max_steps=5"); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, msg)
	}
	files, _ = filepath.Glob(filepath.Join(out, "tensorboard", tfevents.FilePrefix+"*"))
	if len(files) != 2 {
		t.Fatalf("event files after the resume: %v", files)
	}
	var resumed []tfevents.Event
	for _, f := range files {
		evs, err := tfevents.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) > 1 && evs[1].Step == 4 {
			resumed = evs
		}
	}
	// file_version, START at 4, steps 4 and 5 (no evaluation: the eval set was a --set).
	if len(resumed) != 4 || !resumed[1].Start || resumed[2].Step != 4 || resumed[3].Step != 5 {
		t.Errorf("the resumed run's file: %+v", resumed)
	}
}

// Without --metrics-addr and output.tensorboard nothing listens and no event file is
// written; an address already taken fails the run at once, naming it.
func TestTrainObserveOffByDefaultAndTakenAddress(t *testing.T) {
	cfg, out := trainConfig(t, "")
	seen := 0
	hook := withStepHook(func(o *observer, sm train.StepMetrics) {
		seen++
		if o.prom != nil || o.tbDir != "" || o.tb != nil {
			t.Errorf("step %d: endpoint %v, event dir %q with neither asked for", sm.Step, o.prom, o.tbDir)
		}
	})
	if code, msg := runCapturedWith(t, []runOption{hook}, "train", "--config", cfg, "--log-json"); code != exitOK || strings.Contains(msg, "Prometheus") {
		t.Fatalf("train: exit %d\n%s", code, msg)
	}
	if seen != 3 {
		t.Errorf("the observer saw %d steps, want 3", seen)
	}
	if _, err := os.Stat(filepath.Join(out, tensorboardDir)); !os.IsNotExist(err) {
		t.Errorf("%s/%s exists without output.tensorboard: %v", out, tensorboardDir, err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	code, msg := runCaptured(t, "train", "--config", cfg, "--metrics-addr", taken, "--set", "output.dir="+t.TempDir())
	if code != exitError || !strings.Contains(msg, taken) || !strings.Contains(msg, "--metrics-addr") {
		t.Errorf("address in use: exit %d, want %d naming %s:\n%s", code, exitError, taken, msg)
	}
}

// Under lrtrain launch only rank 0 serves and charts: another rank's observer opens
// nothing and leaves the hooks as they were.
func TestObserverOnlyOnRankZero(t *testing.T) {
	c := config.Default()
	c.Output.Dir, c.Output.TensorBoard = t.TempDir(), true
	t.Setenv("LRTRAIN_RDZV_JOB", "job")
	t.Setenv("WORLD_SIZE", "2")
	for rank, serves := range []bool{true, false} {
		t.Setenv("RANK", string(rune('0'+rank)))
		o, err := startObserver(c, "127.0.0.1:0", io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if (o.prom != nil) != serves || (o.tbDir != "") != serves {
			t.Errorf("rank %d: endpoint %v, event dir %q", rank, o.prom != nil, o.tbDir)
		}
		if h := o.wrap(train.Hooks{}); (h.Step != nil) != serves {
			t.Errorf("rank %d: step hook installed %v", rank, h.Step != nil)
		}
		if serves {
			if got := scrapeMetrics(t, o.prom.URL())["lrtrain_world_size"]; got != 2 {
				t.Errorf("lrtrain_world_size %v under WORLD_SIZE=2", got)
			}
		}
		if err := o.close(); err != nil {
			t.Error(err)
		}
	}
}

// Under `lrtrain launch` with two workers, each given --metrics-addr and
// output.tensorboard, only rank 0 serves and writes: one endpoint, one event file.
func TestLaunchObservesOnRankZeroOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process, etcd; runs without -short")
	}
	cfg, _ := trainConfig(t, "")
	out := filepath.Join(t.TempDir(), "run2")
	// Port 0: the kernel picks a free port when rank 0 listens. (A port picked here and
	// freed again could be taken by another process before rank 0 listens: flaky.) Each
	// rank's log says where it serves, so a second endpoint on any port is seen.
	const addr = "127.0.0.1:0"
	t.Setenv(envLaunchWorker, "1")
	runDir := t.TempDir()
	code, msg := runCaptured(t, "launch", "--standalone", "--nproc-per-node", "2", "--run-dir", runDir, "--max-restarts", "0",
		"--no-python", "--", os.Args[0], "-test.run=^TestLaunchWorkerHelper$", "--",
		"train", "--config", cfg, "--set", "output.dir="+out, "--set", "train.micro_batch_size=1",
		"--set", "output.tensorboard=true", "--metrics-addr", addr, "--log-json")
	if code != exitOK {
		t.Fatalf("launch: exit %d\n%s", code, msg)
	}
	for rank, want := range []int{1, 0} {
		log, err := os.ReadFile(filepath.Join(runDir, "logs", "round0", "rank"+string(rune('0'+rank))+".log"))
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(log), "serving Prometheus metrics at http://127.0.0.1:"); n != want {
			t.Errorf("rank %d served metrics %d times, want %d:\n%s", rank, n, want, log)
		}
	}
	files, _ := filepath.Glob(filepath.Join(out, tensorboardDir, tfevents.FilePrefix+"*"))
	if len(files) != 1 {
		t.Fatalf("event files %v, want one", files)
	}
	evs, err := tfevents.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := records(t, out)
	n := 0
	for _, e := range evs {
		for _, s := range e.Scalars {
			if s.Tag == "train/loss" {
				n++
				if s.Value != float64(float32(steps[e.Step]["loss"])) {
					t.Errorf("step %d: charted loss %v, metrics.jsonl %v", e.Step, s.Value, steps[e.Step]["loss"])
				}
			}
		}
	}
	if n != 3 {
		t.Errorf("%d losses charted, want 3", n)
	}
}
