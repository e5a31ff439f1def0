package train

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/adapter"
)

func TestProgressBar(t *testing.T) {
	got := progressBar(12, 100, 2.34567, 1234.4, 80*time.Second+400*time.Millisecond)
	want := "step 12/100 [==>                     ]  12% loss 2.3457 | 1234 tok/s | ETA 1m20s"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if done := progressBar(100, 100, 1, 1, 0); !strings.Contains(done, "[========================]") {
		t.Errorf("finished bar %q", done)
	}
}

// Log lines written while a bar is shown clear the bar's line and draw it again below.
func TestBarWriterKeepsTheBarLast(t *testing.T) {
	var out strings.Builder
	b := &barWriter{out: &out}
	b.Write([]byte("first\n"))
	b.set("[bar 1]")
	b.Write([]byte("event\n"))
	b.set("[bar 2]")
	b.finish()
	want := "first\n\r\033[K[bar 1]\r\033[Kevent\n[bar 1]\r\033[K[bar 2]\n"
	if out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
}

// The last log line of a run reports the process's peak resident memory, as read from
// /proc (VmHWM), which is at least what it uses now, and the peaks of its CPU tensors:
// the run's on that line, each step's on its record.
func TestFinishedLineReportsPeakRSS(t *testing.T) {
	o := tinyOptions(t, t.TempDir())
	o.Train.MaxSteps = 2
	res, err := Run(context.Background(), o, Env{Console: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(o.Output.Dir, LogFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Message   string   `json:"message"`
		PeakMiB   float64  `json:"peak_rss_mib"`
		TensorMiB *float64 `json:"peak_cpu_tensor_mib"`
		MappedMiB *float64 `json:"peak_cpu_mapped_mib"`
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatal(err)
	}
	now, ok := peakRSS()
	if rec.Message != "training finished" || !ok || rec.PeakMiB <= 0 || rec.PeakMiB > float64(now)/(1<<20)+0.1 {
		t.Errorf("last line %q: peak %.1f MiB (the process's peak now %.1f MiB)", lines[len(lines)-1], rec.PeakMiB, float64(now)/(1<<20))
	}
	// The backbone's float32 weights are tensors the run allocated and held
	// throughout: the tensor peak is at least the checkpoint's size less its header.
	st, err := os.Stat(filepath.Join(o.Model.Path, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.TensorMiB == nil || rec.MappedMiB == nil || *rec.TensorMiB < 0.9*float64(st.Size())/(1<<20) {
		t.Fatalf("last line %q: want peak_cpu_tensor_mib ≥ 0.9 × the %.1f MiB checkpoint, and peak_cpu_mapped_mib", lines[len(lines)-1], float64(st.Size())/(1<<20))
	}
	if res.PeakTensorMiB != *rec.TensorMiB {
		t.Errorf("Result.PeakTensorMiB %v, the finished line's %v", res.PeakTensorMiB, *rec.TensorMiB)
	}
	// Each step's record has the step's own peak: the weights at least, the run's at most.
	steps, _ := metricsOf(t, o.Output.Dir)
	if len(steps) != int(o.Train.MaxSteps) {
		t.Fatalf("%d step records, want %d", len(steps), o.Train.MaxSteps)
	}
	for _, s := range steps {
		p, ok := s["peak_cpu_tensor_mib"].(float64)
		if !ok || p < 0.9*float64(st.Size())/(1<<20) || p > *rec.TensorMiB {
			t.Errorf("step record %v: want peak_cpu_tensor_mib in [%.1f, %.1f] MiB", s, 0.9*float64(st.Size())/(1<<20), *rec.TensorMiB)
		}
	}
}

// A fresh LR-LoRA run from the paper's a = 0 says once that it starts at φ's saddle; a
// run that starts elsewhere (identity fit, centred; residual, which is LoRA at a = 0; or
// plain LoRA) says nothing, and neither does a resume of the first run.
func TestSaddleNoteOnlyFromTheZeroStart(t *testing.T) {
	notes := func(dir string) int {
		raw, err := os.ReadFile(filepath.Join(dir, LogFile))
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(raw), `"phi_init":"zero"`)
	}
	train := func(o Options) {
		t.Helper()
		if _, err := Run(context.Background(), o, Env{Console: io.Discard}); err != nil {
			t.Fatal(err)
		}
	}
	zero := tinyOptions(t, t.TempDir())
	zero.Train.MaxSteps = 2
	train(zero)
	if n := notes(zero.Output.Dir); n != 1 {
		t.Fatalf("a = 0 start: %d saddle notes, want 1", n)
	}
	zero.Train.MaxSteps = 4 // resume from the step-2 checkpoint
	train(zero)
	if n := notes(zero.Output.Dir); n != 1 {
		t.Fatalf("after a resume: %d saddle notes in the log, want still 1", n)
	}

	ident := tinyOptions(t, t.TempDir())
	ident.Train.MaxSteps = 1
	ident.Adapter.Phi.Init, ident.Adapter.Phi.Center = adapter.InitIdentity, true
	train(ident)
	residual := tinyOptions(t, t.TempDir())
	residual.Train.MaxSteps = 1
	residual.Adapter.Phi.Residual = true // a = 0: LoRA exactly, φ′ = 1
	train(residual)
	lora := tinyOptions(t, t.TempDir())
	lora.Train.MaxSteps = 1
	lora.Adapter.Method = adapter.LoRA
	train(lora)
	for name, dir := range map[string]string{"identity, centred": ident.Output.Dir,
		"residual from a = 0": residual.Output.Dir, "lora": lora.Output.Dir} {
		if n := notes(dir); n != 0 {
			t.Errorf("%s: %d saddle notes, want 0", name, n)
		}
	}
}
