package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/inspect"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/metrics/prom"
	"github.com/lrtrain/lrtrain/metrics/tfevents"
	"github.com/lrtrain/lrtrain/train"
)

// tensorboardDir is where output.tensorboard puts the event files, under output.dir.
const tensorboardDir = "tensorboard"

// observer charts a run through train.Hooks, on rank 0 only: TensorBoard event files
// under <output.dir>/tensorboard when output.tensorboard is on, and the Prometheus
// endpoint when --metrics-addr is given. Steps come from the Step hook, evaluations
// (loss, perplexity, the Eval hook's metrics) from the Evaluated hook; per-module stable
// ranks of ΔW are computed in the Eval hook when TensorBoard is on. A failure to write the charts is reported once on the
// console and turns them off; it never stops training.
type observer struct {
	rank    int
	tbDir   string                             // "" when TensorBoard is off
	tb      *tfevents.Writer                   // opened at the first hook call (after train.Run holds the run lock)
	prom    *prom.Exporter                     // nil without --metrics-addr
	console io.Writer                          // where warnings go
	onStep  func(*observer, train.StepMetrics) // tests: called after each step is charted
}

// startObserver starts the endpoint (rank 0, with metricsAddr) and prepares the event
// files (rank 0, with output.tensorboard). The rank and world size come from the
// launcher's environment (RANK, WORLD_SIZE), as the worker's groups do; a process not
// started by lrtrain launch is rank 0 of 1. onStep, when not nil, is called after each
// step the observer charts (withStepHook).
func startObserver(c *config.Config, metricsAddr string, console io.Writer, onStep func(*observer, train.StepMetrics)) (*observer, error) {
	o := &observer{console: console, onStep: onStep}
	world := 1
	if _, launched := os.LookupEnv("LRTRAIN_RDZV_JOB"); launched {
		o.rank, world = envInt("RANK", 0), envInt("WORLD_SIZE", 1)
	}
	if o.rank != 0 {
		return o, nil
	}
	if c.Output.TensorBoard {
		o.tbDir = filepath.Join(c.Output.Dir, tensorboardDir)
	}
	if metricsAddr != "" {
		root := c.Checkpoint.Dir
		p, err := prom.Serve(prom.Options{Addr: metricsAddr, WorldSize: world, Restarts: envInt("LRTRAIN_RESTART_COUNT", 0),
			LastCheckpoint: func() (int64, bool) { return lastCheckpointStep(root) }})
		if err != nil {
			return nil, fmt.Errorf("train: --metrics-addr: %w", err)
		}
		o.prom = p
		fmt.Fprintf(console, "serving Prometheus metrics at %s\n", p.URL())
	}
	return o, nil
}

// envInt reads a non-negative integer variable; absent or malformed gives def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

// lastCheckpointStep is the step of the checkpoint root's latest pointer.
func lastCheckpointStep(root string) (int64, bool) {
	dir, err := checkpoint.Latest(root)
	if err != nil {
		return 0, false
	}
	return checkpoint.ParseDirName(filepath.Base(dir))
}

// wrap returns hooks that chart the run and then call inner's.
func (o *observer) wrap(inner train.Hooks) train.Hooks {
	if o.rank != 0 {
		return inner
	}
	h := inner
	h.Step = func(sm train.StepMetrics) {
		o.step(sm)
		if inner.Step != nil {
			inner.Step(sm)
		}
		if o.onStep != nil {
			o.onStep(o, sm)
		}
	}
	h.Evaluated = func(er train.EvalResult) {
		o.evaluation(er)
		if inner.Evaluated != nil {
			inner.Evaluated(er)
		}
	}
	h.Eval = func(ec train.EvalContext) (map[string]float64, error) {
		o.evaluated(ec)
		if inner.Eval != nil {
			return inner.Eval(ec)
		}
		return nil, nil
	}
	return h
}

// step charts one optimizer step.
func (o *observer) step(sm train.StepMetrics) {
	if o.prom != nil {
		o.prom.ObserveStep(prom.Step{Step: sm.Step, Loss: sm.Loss, LR: sm.LR, GradNorm: sm.GradNorm,
			Tokens: sm.Tokens, TokensPerS: sm.TokensPerS})
	}
	scalars := []tfevents.Scalar{{Tag: "train/loss", Value: sm.Loss}, {Tag: "train/lr", Value: sm.LR},
		{Tag: "train/grad_norm", Value: sm.GradNorm}, {Tag: "train/tokens_per_s", Value: sm.TokensPerS},
		{Tag: "train/step_s", Value: sm.StepSeconds}}
	if sm.PeakTensorMiB > 0 {
		scalars = append(scalars, tfevents.Scalar{Tag: "train/peak_cpu_tensor_mib", Value: sm.PeakTensorMiB})
	}
	o.chart(sm.Step, scalars)
}

// evaluated charts the stable rank ‖ΔW‖²_F/σ²_max of every adapted module, and its mean over the attention and the
// MLP modules, when TensorBoard is on.
func (o *observer) evaluated(ec train.EvalContext) {
	if o.tbDir == "" || ec.Model == nil {
		return
	}
	var scalars []tfevents.Scalar
	sums, counts := map[inspect.Kind]float64{}, map[inspect.Kind]int{}
	for _, ad := range ec.Model.Adapters() {
		sr, err := stableRankOf(ad)
		if err != nil {
			o.warn(fmt.Errorf("stable rank at step %d: %w", ec.Step, err))
			return
		}
		scalars = append(scalars, tfevents.Scalar{Tag: "stable_rank/" + ad.Name(), Value: sr})
		if _, kind, err := inspect.ParseModule(ad.Name()); err == nil {
			sums[kind] += sr
			counts[kind]++
		}
	}
	for _, kind := range []inspect.Kind{inspect.Attn, inspect.MLP} {
		if counts[kind] > 0 {
			scalars = append(scalars, tfevents.Scalar{Tag: "stable_rank_mean/" + string(kind), Value: sums[kind] / float64(counts[kind])})
		}
	}
	o.chart(ec.Step, scalars)
}

// stableRankOf is the stable rank of the adapter's update ΔW (lrlora.StableRank).
func stableRankOf(ad *lrlora.Adapter) (float64, error) {
	dw, err := ad.DeltaWeight()
	if err != nil {
		return 0, err
	}
	defer dw.Drop()
	return lrlora.StableRank(dw)
}

// evaluation charts one evaluation: its loss as eval/loss, its perplexity (language
// models) as eval/ppl, a hook's metric m as eval/m.
func (o *observer) evaluation(er train.EvalResult) {
	scalars := []tfevents.Scalar{{Tag: "eval/loss", Value: er.Loss}}
	if er.Perplexity != 0 {
		scalars = append(scalars, tfevents.Scalar{Tag: "eval/ppl", Value: er.Perplexity})
	}
	keys := make([]string, 0, len(er.Metrics))
	for k := range er.Metrics {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		scalars = append(scalars, tfevents.Scalar{Tag: "eval/" + k, Value: er.Metrics[k]})
	}
	if o.prom != nil {
		o.prom.ObserveEval(er.Step, er.Loss)
	}
	o.chart(er.Step, scalars)
}

// chart writes scalars to the event file, creating it on first use.
func (o *observer) chart(step int64, scalars []tfevents.Scalar) {
	if o.tbDir == "" || len(scalars) == 0 {
		return
	}
	if o.tb == nil {
		// A new file per process, starting with SessionLog START at the first step it
		// charts: TensorBoard drops what a killed run logged from that step on.
		w, err := tfevents.Create(o.tbDir, tfevents.Options{})
		if err == nil {
			if err = w.Start(step); err != nil {
				w.Close()
			}
		}
		if err != nil {
			o.warn(err)
			return
		}
		o.tb = w
	}
	if err := o.tb.Add(step, scalars...); err != nil {
		o.warn(err)
	}
}

// warn reports a charting failure once and turns TensorBoard off.
func (o *observer) warn(err error) {
	if o.tbDir != "" {
		fmt.Fprintf(o.console, "warning: TensorBoard charts stopped: %v\n", err)
	}
	o.tbDir = ""
}

// close closes the event file and stops the endpoint.
func (o *observer) close() error {
	var errs []error
	if o.tb != nil {
		errs = append(errs, o.tb.Close())
	}
	if o.prom != nil {
		errs = append(errs, o.prom.Close())
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
