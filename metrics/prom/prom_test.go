package prom

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape GETs url and parses the answer with Prometheus' own text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// value is the single sample of a gauge or counter family; ok false when absent.
func value(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	f, ok := fams[name]
	if !ok || len(f.Metric) != 1 {
		return 0, false
	}
	m := f.Metric[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	}
	return 0, false
}

func TestServeScrapesWhatWasObserved(t *testing.T) {
	ckpt, have := int64(0), false
	e, err := Serve(Options{Addr: "127.0.0.1:0", WorldSize: 4, Restarts: 2,
		LastCheckpoint: func() (int64, bool) { return ckpt, have }})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	fams := scrape(t, e.URL())
	for name, want := range map[string]float64{"lrtrain_world_size": 4, "lrtrain_restarts": 2,
		"lrtrain_last_checkpoint_step": 0, "lrtrain_step": 0, "lrtrain_tokens_total": 0} {
		if got, ok := value(fams, name); !ok || got != want {
			t.Errorf("before any step: %s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if _, ok := fams["lrtrain_eval_loss"]; ok {
		t.Error("lrtrain_eval_loss is served before any evaluation")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("the Go collector's metrics are missing")
	}

	e.ObserveStep(Step{Step: 7, Loss: 2.0625, LR: 3e-4, GradNorm: 0.75, Tokens: 100, TokensPerS: 1234.5})
	e.ObserveStep(Step{Step: 8, Loss: 1.9375, LR: 2.5e-4, GradNorm: 0.5, Tokens: 60, TokensPerS: 999.25})
	e.ObserveEval(8, 2.25)
	ckpt, have = 6, true
	fams = scrape(t, e.URL())
	// Text exposition prints float64 in shortest round-trip form: values come back exactly.
	for name, want := range map[string]float64{"lrtrain_step": 8, "lrtrain_loss": 1.9375, "lrtrain_learning_rate": 2.5e-4,
		"lrtrain_grad_norm": 0.5, "lrtrain_tokens_per_second": 999.25, "lrtrain_tokens_total": 160,
		"lrtrain_eval_loss": 2.25, "lrtrain_eval_step": 8, "lrtrain_last_checkpoint_step": 6} {
		if got, ok := value(fams, name); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	if f := fams["lrtrain_tokens_total"]; f.GetType() != dto.MetricType_COUNTER {
		t.Errorf("lrtrain_tokens_total is a %v", f.GetType())
	}
	e.ObserveEval(10, 2) // a second evaluation changes the values only
	if got, _ := value(scrape(t, e.URL()), "lrtrain_eval_loss"); got != 2 {
		t.Errorf("lrtrain_eval_loss after the second evaluation: %v", got)
	}
}

// A registration that fails (here: one collector twice) is an error wrapping
// Prometheus' own, not a panic.
func TestRegisterWrapsAClash(t *testing.T) {
	e, err := newExporter(Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = register(e.reg, e.step)
	var clash prometheus.AlreadyRegisteredError
	if !errors.As(err, &clash) || !strings.HasPrefix(err.Error(), "prom: register metrics: ") {
		t.Errorf("registering lrtrain_step twice: %v, want a wrapped AlreadyRegisteredError", err)
	}
	if err := register(e.reg, e.eval.loss); err == nil {
		t.Error("registering lrtrain_eval_loss again succeeded: the eval gauges are not registered up front")
	}
}

func TestServeErrorsNameTheAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().String()
	if _, err := Serve(Options{Addr: taken}); err == nil || !strings.Contains(err.Error(), taken) {
		t.Errorf("address in use: %v, want an error naming %s", err, taken)
	}
	if _, err := Serve(Options{Addr: "9400"}); err == nil || !strings.Contains(err.Error(), `"9400"`) {
		t.Errorf("address without a port: %v", err)
	}
}

func TestCloseFreesTheAddress(t *testing.T) {
	e, err := Serve(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := e.Addr()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + Path); err == nil {
		t.Errorf("%s still answers after Close", addr)
	}
	again, err := Serve(Options{Addr: addr})
	if err != nil {
		t.Fatalf("serve again on %s: %v", addr, err)
	}
	again.Close()
}
