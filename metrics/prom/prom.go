// Package prom serves a training run's progress as Prometheus metrics: an HTTP
// endpoint, /metrics in Prometheus' text format (promhttp), that a cluster's Prometheus
// scrapes from rank 0 of a job.
//
// The metrics, all prefixed lrtrain_:
//
//	lrtrain_step                   gauge    optimizer steps taken (the last step's number)
//	lrtrain_loss                   gauge    the last step's training loss
//	lrtrain_learning_rate          gauge    the last step's learning rate
//	lrtrain_grad_norm              gauge    the last step's gradient norm, before clipping
//	lrtrain_tokens_per_second      gauge    the last step's input tokens per second, all ranks
//	lrtrain_tokens_total           counter  input tokens trained on by this process, all ranks
//	lrtrain_eval_loss              gauge    the last evaluation's loss (absent before one)
//	lrtrain_eval_step              gauge    the step of that evaluation
//	lrtrain_last_checkpoint_step   gauge    the step of the newest committed checkpoint, 0 for none
//	lrtrain_restarts               gauge    how often the launcher restarted the workers
//	lrtrain_world_size             gauge    data-parallel ranks
//
// with the Go runtime's and the process's standard collectors (go_*, process_*). Each
// Exporter has its own registry: nothing is registered globally. The gauges hold the
// values of the last Observe call; lrtrain_last_checkpoint_step is read when scraped.
// Registration is checked: a clash (two metrics of one name after an edit) is an error
// of Serve, wrapped, never a panic. The eval gauges are registered with the others and
// collected only once an evaluation was observed, so ObserveEval registers nothing.
package prom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where the metrics are served.
const Path = "/metrics"

// Options configure an Exporter.
type Options struct {
	// Addr is the listen address, host:port (":9400", "127.0.0.1:0").
	Addr string
	// WorldSize and Restarts are the run's fixed gauges.
	WorldSize, Restarts int
	// LastCheckpoint returns the newest committed checkpoint's step (ok false: none);
	// nil means none. It is called on every scrape.
	LastCheckpoint func() (step int64, ok bool)
}

// Step is what Observe records of one optimizer step.
type Step struct {
	Step       int64
	Loss       float64
	LR         float64
	GradNorm   float64
	Tokens     int64
	TokensPerS float64
}

// Exporter holds the metrics and serves them until Close.
type Exporter struct {
	reg                           *prometheus.Registry
	step, loss, lr, gradNorm, tps prometheus.Gauge
	eval                          *evalGauges
	tokens                        prometheus.Counter
	ln                            net.Listener
	srv                           *http.Server
	served                        chan error
}

// Serve listens on o.Addr and serves the metrics at Path in the background. An address
// that cannot be listened on (taken, not local, malformed) is an error naming it.
func Serve(o Options) (*Exporter, error) {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("prom: metrics address %q: %w", o.Addr, err)
	}
	e, err := newExporter(o)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("prom: cannot serve metrics on %s: %w", o.Addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{Registry: e.reg}))
	e.ln, e.srv, e.served = ln, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, make(chan error, 1)
	go func() { e.served <- e.srv.Serve(ln) }()
	return e, nil
}

func newExporter(o Options) (*Exporter, error) {
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: "lrtrain_" + name, Help: help})
	}
	e := &Exporter{
		reg:      prometheus.NewRegistry(),
		step:     gauge("step", "Optimizer steps taken (the last step's number)."),
		loss:     gauge("loss", "The last step's training loss."),
		lr:       gauge("learning_rate", "The last step's learning rate."),
		gradNorm: gauge("grad_norm", "The last step's global gradient norm, before clipping."),
		tps:      gauge("tokens_per_second", "The last step's input tokens per second, all ranks."),
		eval: &evalGauges{loss: gauge("eval_loss", "The last evaluation's loss."),
			step: gauge("eval_step", "The step of the last evaluation.")},
		tokens: prometheus.NewCounter(prometheus.CounterOpts{Name: "lrtrain_tokens_total",
			Help: "Input tokens trained on since this process started, all ranks."}),
	}
	restarts := gauge("restarts", "How often the launcher restarted the worker group.")
	restarts.Set(float64(o.Restarts))
	world := gauge("world_size", "Data-parallel ranks of the run.")
	world.Set(float64(o.WorldSize))
	last := o.LastCheckpoint
	lastCkpt := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lrtrain_last_checkpoint_step",
		Help: "The step of the newest committed checkpoint (0: none yet)."}, func() float64 {
		if last == nil {
			return 0
		}
		if s, ok := last(); ok {
			return float64(s)
		}
		return 0
	})
	if err := register(e.reg, e.step, e.loss, e.lr, e.gradNorm, e.tps, e.tokens, restarts, world, lastCkpt, e.eval,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	return e, nil
}

// register registers each collector with reg, stopping at the first that fails.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("prom: register metrics: %w", err)
		}
	}
	return nil
}

// evalGauges are the evaluation's gauges, collected only once an evaluation was
// observed (before that a scrape shows no lrtrain_eval_* at all, not a false 0).
type evalGauges struct {
	loss, step prometheus.Gauge
	seen       atomic.Bool
}

// Describe describes both gauges, observed or not.
func (g *evalGauges) Describe(ch chan<- *prometheus.Desc) {
	g.loss.Describe(ch)
	g.step.Describe(ch)
}

// Collect collects both gauges once an evaluation was observed, and nothing before.
func (g *evalGauges) Collect(ch chan<- prometheus.Metric) {
	if g.seen.Load() {
		g.loss.Collect(ch)
		g.step.Collect(ch)
	}
}

// Addr is the address listened on (with the port picked for ":0").
func (e *Exporter) Addr() string { return e.ln.Addr().String() }

// URL is the metrics URL on the address listened on.
func (e *Exporter) URL() string { return "http://" + e.Addr() + Path }

// ObserveStep records one optimizer step.
func (e *Exporter) ObserveStep(s Step) {
	e.step.Set(float64(s.Step))
	e.loss.Set(s.Loss)
	e.lr.Set(s.LR)
	e.gradNorm.Set(s.GradNorm)
	e.tps.Set(s.TokensPerS)
	if s.Tokens > 0 {
		e.tokens.Add(float64(s.Tokens))
	}
}

// ObserveEval records an evaluation's loss; the eval gauges appear from the first one.
func (e *Exporter) ObserveEval(step int64, loss float64) {
	e.eval.loss.Set(loss)
	e.eval.step.Set(float64(step))
	e.eval.seen.Store(true)
}

// Close stops serving: the listener closes at once and requests in flight get up to
// a second to finish.
func (e *Exporter) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	if serr := <-e.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("prom: stop serving on %s: %w", e.Addr(), err)
	}
	return nil
}
