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
	"sync"
	"syscall"
	"time"

	"github.com/lrtrain/lrtrain/phiop"
)

func main() {
	cfgPath := flag.String("config", "experiments/rank/config.yaml", "experiment configuration")
	out := flag.String("out", "runs/rank", "output directory")
	jobs := flag.Int("jobs", 1, "runs trained at once, each on its own OS thread (use with OMP_NUM_THREADS=1; results do not depend on it)")
	flag.Parse()
	if *jobs < 1 {
		log.Fatalf("-jobs %d: want 1 or more", *jobs)
	}
	if err := run(*cfgPath, *out, *jobs); err != nil {
		log.Fatal(err)
	}
}

func run(cfgPath, out string, jobs int) error {
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
	var logMu sync.Mutex
	logf := func(s string) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintf(os.Stderr, "%7.1fs  %s\n", time.Since(start).Seconds(), s)
	}
	var tasks []*taskSummary
	var results []*Result
	for _, teacher := range c.allTeachers() {
		ts, rs, err := runTeacher(c, teacher, out, jobs, logf)
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

// runTeacher builds teacher's task and trains every cell on it, jobs at a time; a
// cell that trains the same thing as an earlier one (an ablation's baseline) reuses its
// result. Each run draws from its own seeded generators and loads its own student, so
// its numbers do not depend on jobs or on the order runs finish in.
func runTeacher(c Config, teacher, out string, jobs int, logf func(string)) (*taskSummary, []*Result, error) {
	t, err := newTask(c, out, teacher)
	if err != nil {
		return nil, nil, fmt.Errorf("task %s: %w", teacher, err)
	}
	defer t.drop()
	sum := t.summary()
	logf(fmt.Sprintf("teacher %s: ‖ΔW*‖/‖W0‖ = %.3f, mean sr(ΔW*) %.2f; base student KL train %.5f, val %.5f, held-out %.5f",
		teacher, t.teacherRelNorm, sum.TeacherSR, t.baseTrainKL, t.baseValKL, t.baseEvalKL))
	cells := c.cells(teacher)
	keys := make([]string, len(cells))
	first := map[string]int{} // key → index of the cell that trains it
	var todo []int
	for i, cl := range cells {
		if keys[i], err = c.key(cl); err != nil {
			return nil, nil, err
		}
		if _, ok := first[keys[i]]; !ok {
			first[keys[i]] = i
			todo = append(todo, i)
		}
	}
	trained, err := trainCells(c, t, cells, todo, out, jobs, logf)
	if err != nil {
		return nil, nil, err
	}
	results := make([]*Result, len(cells))
	for i, cl := range cells {
		if f := first[keys[i]]; f != i {
			r := *trained[f]
			r.Section, r.Variant = cl.section, cl.variant.Name
			results[i] = &r
			continue
		}
		results[i] = trained[i]
	}
	return sum, results, nil
}

// trainCells trains cells[i] for every i of todo on jobs goroutines, each locked to
// its OS thread (libtorch's grad mode is per thread), and returns the results by cell
// index. The first error stops the handing out of further cells and is returned once
// the running ones end.
func trainCells(c Config, t *task, cells []cell, todo []int, out string, jobs int, logf func(string)) (map[int]*Result, error) {
	var (
		mu       sync.Mutex
		results  = map[int]*Result{}
		firstErr error
		next     int
		wg       sync.WaitGroup
	)
	t0 := time.Now()
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr != nil || next == len(todo) {
			return 0, false
		}
		next++
		return todo[next-1], true
	}
	for w := 0; w < min(jobs, len(todo)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for {
				i, ok := take()
				if !ok {
					return
				}
				cl := cells[i]
				c0, cpu0 := time.Now(), threadCPUSeconds()
				r, err := trainCell(c, t, cl, out, func(string) {})
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				r.Seconds, r.CPUSeconds = time.Since(c0).Seconds(), threadCPUSeconds()-cpu0
				results[i] = r
				n := len(results)
				left := time.Since(t0).Seconds() / float64(n) * float64(len(todo)-n)
				mu.Unlock()
				logf(fmt.Sprintf("[%d/%d] %s  val KL %.5f  held-out KL %.5f  (%.1fs, CPU %.1fs; ~%.0fs left on this teacher)",
					n, len(todo), cl.name(t.teacher), r.ValKL, r.EvalKL, r.Seconds, r.CPUSeconds, left))
			}
		}()
	}
	wg.Wait()
	return results, firstErr
}

// threadCPUSeconds is the user + system CPU time the calling OS thread has used (0 if
// unavailable): a measure of a run's cost that other jobs on the machine disturb less
// than wall time. Per thread, so runs trained side by side (-jobs) are not charged for
// each other; libtorch runs a run's ops on the calling thread when OMP_NUM_THREADS=1.
func threadCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// rusageThread is Linux's RUSAGE_THREAD.
const rusageThread = 1
