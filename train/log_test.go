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
// /proc (VmHWM), which is at least what it uses now.
func TestFinishedLineReportsPeakRSS(t *testing.T) {
	o := tinyOptions(t, t.TempDir())
	o.Train.MaxSteps = 1
	if _, err := Run(context.Background(), o, Env{Console: io.Discard}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(o.Output.Dir, LogFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Message string  `json:"message"`
		PeakMiB float64 `json:"peak_rss_mib"`
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rec); err != nil {
		t.Fatal(err)
	}
	now, ok := peakRSS()
	if rec.Message != "training finished" || !ok || rec.PeakMiB <= 0 || rec.PeakMiB > float64(now)/(1<<20)+0.1 {
		t.Errorf("last line %q: peak %.1f MiB (the process's peak now %.1f MiB)", lines[len(lines)-1], rec.PeakMiB, float64(now)/(1<<20))
	}
}
