// Command rank is a small, honest test of the LR-LoRA paper's claim that a learned
// transfer function lets rank-r adapters fit updates of rank above r: a teacher
// differs from the student (the base model) by a rank-4r update on every adapted
// module, and rank-r adapters of each method (lora, sinelora, lrlora) are distilled
// from the teacher's next-token distributions at the same r, seed, data and schedule.
//
//	go run ./experiments/rank --config experiments/rank/config.yaml --out runs/rank
//
// It writes results.md (the summary and per-module stable ranks), results.json,
// <method>-lr<lr>.metrics.jsonl, loss.png and <method>_stable_rank.png (best learning
// rate of each method) into --out. See
// README.md for what it measured.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
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
	runtime.LockOSThread() // libtorch's grad mode is per OS thread
	phiop.InitThreads()
	c, err := readConfig(cfgPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	start := time.Now()
	t, err := newTask(c, out)
	if err != nil {
		return fmt.Errorf("task: %w", err)
	}
	defer t.drop()
	logf := func(s string) { fmt.Fprintf(os.Stderr, "%6.1fs  %s\n", time.Since(start).Seconds(), s) }
	logf(fmt.Sprintf("teacher: rank-%d update, ‖ΔW*‖/‖W0‖ = %.3f; base student KL train %.5f, held-out %.5f",
		c.TeacherRank, t.teacherRelNorm, t.baseTrainKL, t.baseEvalKL))
	var results []*Result
	for _, method := range c.Methods {
		for _, lr := range c.LRs {
			t0 := time.Now()
			r, err := trainMethod(c, t, method, lr, out, logf)
			if err != nil {
				return err
			}
			r.Seconds = time.Since(t0).Seconds()
			results = append(results, r)
		}
	}
	if err := writeReport(c, t, results, out, cfgPath); err != nil {
		return err
	}
	logf("wrote " + filepath.Join(out, "results.md"))
	return nil
}
