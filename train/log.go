package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/lrtrain/lrtrain/phiop"
)

// Run outputs, under output.dir.
const (
	LogFile     = "train.log"     // zerolog JSON lines (rank 0)
	MetricsFile = "metrics.jsonl" // one JSON object per logged step and per evaluation (rank 0)
)

// runLog is where a run reports: every event as a JSON line in train.log, a readable
// console (zerolog's console writer on a terminal, JSON lines otherwise), a progress
// bar on a terminal, and metrics.jsonl. Ranks other than 0 only log to the console
// (the launcher keeps a log per rank).
type runLog struct {
	log     zerolog.Logger // file and console
	file    zerolog.Logger // train.log only (per-step lines while a bar is shown)
	console *barWriter     // nil unless a progress bar is shown
	closers []io.Closer
	metrics *json.Encoder
	mbuf    *bufio.Writer
	// metricsFile is metrics.jsonl at metricsPath, open for appending (rank 0).
	metricsFile *os.File
	metricsPath string
	lock        *runLock // output.dir's LockFile (rank 0)
}

// openRunLog opens the run's outputs. console is the terminal or stream for humans. Rank
// 0 first locks output.dir (LockFile), and checkpoint.dir when it lies outside, for as
// long as the log is open.
func openRunLog(dir, checkpointDir string, rank int, console io.Writer, jsonConsole bool) (*runLog, error) {
	l := &runLog{}
	term := !jsonConsole && isTerminal(console)
	var cw io.Writer = console
	if term {
		l.console = &barWriter{out: console}
		cw = zerolog.ConsoleWriter{Out: l.console, TimeFormat: time.TimeOnly}
	}
	if rank != 0 {
		l.log = zerolog.New(cw).With().Timestamp().Int("rank", rank).Logger()
		l.file = zerolog.Nop()
		return l, nil
	}
	lock, err := lockRunDirs(dir, checkpointDir)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("train: open log: %w", err)
	}
	l.metricsPath = filepath.Join(dir, MetricsFile)
	mf, err := os.OpenFile(l.metricsPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		f.Close()
		lock.release()
		return nil, fmt.Errorf("train: open metrics: %w", err)
	}
	l.closers, l.metricsFile, l.lock = []io.Closer{f}, mf, lock
	l.mbuf = bufio.NewWriter(mf)
	l.metrics = json.NewEncoder(l.mbuf)
	l.log = zerolog.New(zerolog.MultiLevelWriter(f, cw)).With().Timestamp().Logger()
	l.file = zerolog.New(f).With().Timestamp().Logger()
	return l, nil
}

// stepLogger is where per-step lines go: the file alone while a bar shows progress.
func (l *runLog) stepLogger() *zerolog.Logger {
	if l.console != nil {
		return &l.file
	}
	return &l.log
}

// metric appends one record to metrics.jsonl (rank 0) and flushes it, so a killed run
// loses at most the line being written.
func (l *runLog) metric(rec map[string]any) {
	if l.metrics == nil {
		return
	}
	if err := l.metrics.Encode(rec); err != nil {
		l.log.Warn().Err(err).Msg("write metrics")
		return
	}
	if err := l.mbuf.Flush(); err != nil {
		l.log.Warn().Err(err).Msg("write metrics")
	}
}

func (l *runLog) close() {
	if l.console != nil {
		l.console.finish()
	}
	if l.mbuf != nil {
		l.mbuf.Flush()
		l.metricsFile.Close()
	}
	for _, c := range l.closers {
		c.Close()
	}
	l.lock.release() // last: nothing of this run is written after it
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// barWriter is a terminal writer with a progress bar on its last line: every write
// clears the bar, prints, and draws the bar again.
type barWriter struct {
	mu  sync.Mutex
	out io.Writer
	bar string
}

func (b *barWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != "" {
		io.WriteString(b.out, "\r\033[K")
	}
	n, err := b.out.Write(p)
	if b.bar != "" {
		io.WriteString(b.out, b.bar)
	}
	return n, err
}

// set replaces the bar.
func (b *barWriter) set(bar string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bar = bar
	io.WriteString(b.out, "\r\033[K"+bar)
}

// finish leaves the last bar on its own line.
func (b *barWriter) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != "" {
		io.WriteString(b.out, "\n")
		b.bar = ""
	}
}

// progressBar renders "step 12/100 [=====>     ]  12% loss 2.3456 | 1,234 tok/s | ETA 1m20s".
func progressBar(step, total int64, loss, tokPerSec float64, eta time.Duration) string {
	const width = 24
	frac := float64(step) / float64(max(total, 1))
	fill := int(frac * width)
	bar := make([]byte, width)
	for i := range bar {
		switch {
		case i < fill:
			bar[i] = '='
		case i == fill:
			bar[i] = '>'
		default:
			bar[i] = ' '
		}
	}
	return fmt.Sprintf("step %d/%d [%s] %3.0f%% loss %.4f | %.0f tok/s | ETA %s",
		step, total, bar, 100*frac, loss, tokPerSec, eta.Round(time.Second))
}

// peakRSS is the process's peak resident set (VmHWM), where /proc tells it.
func peakRSS() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// allocPeaks are phiop's allocator peaks over a run: each step resets the allocator's
// own, so that its record has the step's, and the run keeps the highest of them all.
type allocPeaks struct{ tensor, mapped int64 }

// add takes in the allocator's peaks since its last reset.
func (p *allocPeaks) add(cs phiop.AllocStats) {
	p.tensor, p.mapped = max(p.tensor, cs.PeakTensorBytes), max(p.mapped, cs.PeakBytes)
}

// mib is bytes in MiB to one decimal.
func mib(bytes int64) float64 { return round(float64(bytes)/(1<<20), 1) }
