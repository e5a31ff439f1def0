// Command rank is a small, honest test of the LR-LoRA paper's claim that a learned
// transfer function lets rank-r adapters fit updates of rank above r: a teacher
// differs from the student (the base model) by an update on every adapted module
// (rank-4r, or full rank with a power-law spectrum), and rank-r adapters of each
// method and φ variant are distilled from the teacher's next-token distributions at
// the same seeds, data and schedule, over a small learning-rate sweep.
//
//	go run ./experiments/rank --config experiments/rank/config.yaml --out runs/rank
//	go run ./experiments/rank --config experiments/rank/reproduce.yaml --out runs/reproduce
//
// It writes results.md (best learning rate per variant: mean ± std over seeds of the
// held-out KL, stable ranks, constant share; every learning rate; the ablations),
// results.json (every run), metrics/<run>.metrics.jsonl and loss_<teacher>_r<r>.png
// into --out. See README.md.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/lrtrain/lrtrain/phiop"
)

func main() {
	cfgPath := flag.String("config", "experiments/rank/config.yaml", "experiment configuration")
	out := flag.String("out", "runs/rank", "output directory")
	flag.Parse()
	if err := run(*cfgPath, *out); err != nil {
		log.Fatal(err)
	}
}

func run(cfgPath, out string) error {
	runtime.LockOSThread()         // libtorch's grad mode is per OS thread
	threads := phiop.InitThreads() // OMP_NUM_THREADS, else the core count
	c, err := readConfig(cfgPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	logf := func(s string) { fmt.Fprintf(os.Stderr, "%7.1fs  %s\n", time.Since(start).Seconds(), s) }
	var tasks []*taskSummary
	var results []*Result
	for _, teacher := range c.allTeachers() {
		ts, rs, err := runTeacher(c, teacher, out, logf)
		if err != nil {
			return err
		}
		tasks, results = append(tasks, ts), append(results, rs...)
	}
	if err := writeReport(c, tasks, results, out, cfgPath, time.Since(start), threads); err != nil {
		return err
	}
	logf("wrote " + filepath.Join(out, "results.md"))
	return nil
}

// runTeacher builds teacher's task and trains every cell on it; a cell that trains the
// same thing as an earlier one (an ablation's baseline) reuses its result.
func runTeacher(c Config, teacher, out string, logf func(string)) (*taskSummary, []*Result, error) {
	t, err := newTask(c, out, teacher)
	if err != nil {
		return nil, nil, fmt.Errorf("task %s: %w", teacher, err)
	}
	defer t.drop()
	sum := t.summary()
	logf(fmt.Sprintf("teacher %s: ‖ΔW*‖/‖W0‖ = %.3f, mean sr(ΔW*) %.2f; base student KL train %.5f, val %.5f, held-out %.5f",
		teacher, t.teacherRelNorm, sum.TeacherSR, t.baseTrainKL, t.baseValKL, t.baseEvalKL))
	cells := c.cells(teacher)
	done := map[string]*Result{}
	var results []*Result
	t0 := time.Now()
	for i, cl := range cells {
		key, err := c.key(cl)
		if err != nil {
			return nil, nil, err
		}
		if prev, ok := done[key]; ok {
			r := *prev
			r.Section, r.Variant = cl.section, cl.variant.Name
			results = append(results, &r)
			continue
		}
		c0, cpu0 := time.Now(), cpuSeconds()
		r, err := trainCell(c, t, cl, out, func(string) {})
		if err != nil {
			return nil, nil, err
		}
		r.Seconds, r.CPUSeconds = time.Since(c0).Seconds(), cpuSeconds()-cpu0
		done[key], results = r, append(results, r)
		left := time.Since(t0).Seconds() / float64(i+1) * float64(len(cells)-i-1)
		logf(fmt.Sprintf("[%d/%d] %s  val KL %.5f  held-out KL %.5f  (%.1fs, CPU %.1fs; ~%.0fs left on this teacher)",
			i+1, len(cells), cl.name(teacher), r.ValKL, r.EvalKL, r.Seconds, r.CPUSeconds, left))
	}
	return sum, results, nil
}

// cpuSeconds is the user + system CPU time the process has used (0 if unavailable):
// a measure of a run's cost that other jobs on the machine disturb less than wall time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
