package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lrtrain/lrtrain/inspect"
)

// best returns, per method in config order, the run with the lowest held-out KL.
func best(c Config, results []*Result) []*Result {
	var out []*Result
	for _, m := range c.Methods {
		var b *Result
		for _, r := range results {
			if r.Method == m && (b == nil || r.EvalKL < b.EvalKL) {
				b = r
			}
		}
		if b != nil {
			out = append(out, b)
		}
	}
	return out
}

// writeReport writes results.md, results.json and the plots.
func writeReport(c Config, t *task, results []*Result, out, cfgPath string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# rank experiment\n\n`go run ./experiments/rank --config %s --out %s`\n\n", cfgPath, out)
	teacherMean := 0.0
	for _, v := range t.teacherSR {
		teacherMean += v / float64(len(t.teacherSR))
	}
	fmt.Fprintf(&b, "Teacher: base + rank-%d update on %s (‖ΔW*‖_F/‖W0‖_F = %.3f, mean stable rank %.2f). "+
		"Students: rank-%d adapters, seed %d, %d steps of %d×%d tokens, AdamW, warmup %.0f%% then linear decay, grad clip %g.\n\n",
		c.TeacherRank, c.Targets, t.teacherRelNorm, teacherMean, c.Rank, c.Seed, c.Steps, c.Batch, c.SeqLen, 100*c.WarmupRatio, c.GradClip)
	fmt.Fprintf(&b, "KL(teacher ‖ student) per token, nats. Unadapted student: train %.5f, held-out %.5f.\n\n", t.baseTrainKL, t.baseEvalKL)
	fmt.Fprintf(&b, "| method | lr | trainable params | train KL (full set, end) | train KL (last 10 steps) | held-out KL | mean sr(ΔW) attn | mean sr(ΔW) mlp | mean sr(B·A) | constant share of ΔW | seconds |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		attn, mlp, ba := means(r)
		fmt.Fprintf(&b, "| %s | %g | %d | %.5f | %.5f | %.5f | %.3f | %.3f | %.3f | %.3f | %.0f |\n",
			r.Method, r.LR, r.TrainableParams, r.FinalTrainKL, r.LastStepsKL, r.EvalKL, attn, mlp, ba, r.ConstShare, r.Seconds)
	}
	top := best(c, results)
	fmt.Fprintf(&b, "\nPer-module stable rank ‖X‖²_F/σ²_max of the learned ΔW (of B·A in parentheses), at each method's best learning rate by held-out KL:\n\n| module | teacher ΔW* |")
	for _, r := range top {
		fmt.Fprintf(&b, " %s (lr %g) |", r.Method, r.LR)
	}
	fmt.Fprintf(&b, "\n|---|---|%s\n", strings.Repeat("---|", len(top)))
	var names []string
	for n := range t.teacherSR {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "| %s | %.3f |", n, t.teacherSR[n])
		for _, r := range top {
			fmt.Fprintf(&b, " %.3f (%.3f) |", r.SRDelta[n], r.SRBA[n])
		}
		fmt.Fprintln(&b)
	}
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())
	raw, err := json.MarshalIndent(map[string]any{
		"config": c, "teacher_stable_rank": t.teacherSR, "teacher_relative_norm": t.teacherRelNorm,
		"base_train_kl": t.baseTrainKL, "base_eval_kl": t.baseEvalKL, "results": results,
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "results.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	return plots(top, out)
}

// means returns the mean sr(ΔW) over attention and MLP modules and the mean sr(B·A).
func means(r *Result) (attn, mlp, ba float64) {
	var na, nm int
	for _, s := range r.Modules {
		_, kind, err := inspect.ParseModule(s.Name)
		if err != nil {
			continue
		}
		if kind == inspect.Attn {
			attn, na = attn+s.SRDelta, na+1
		} else {
			mlp, nm = mlp+s.SRDelta, nm+1
		}
		ba += s.SRBA
	}
	return attn / float64(max(na, 1)), mlp / float64(max(nm, 1)), ba / float64(max(len(r.Modules), 1))
}

// plots draws the loss curves and the stable rank by depth of the given runs.
func plots(runs []*Result, out string) error {
	var curves []inspect.LossCurve
	for _, r := range runs {
		c, err := inspect.ReadLossCurve(filepath.Join(out, runName(r.Method, r.LR)+".metrics.jsonl"))
		if err != nil {
			return err
		}
		curves = append(curves, c)
		var rows []inspect.LayerRank
		for _, s := range r.Modules {
			lr, err := inspect.NewLayerRank(s.Name, s.SRDelta, s.SRBA)
			if err != nil {
				return err
			}
			rows = append(rows, lr)
		}
		if err := inspect.PlotStableRank(filepath.Join(out, r.Method+"_stable_rank.png"), rows,
			inspect.WithTitle(fmt.Sprintf("Stable rank by depth: %s, lr %g", r.Method, r.LR))); err != nil {
			return err
		}
	}
	return inspect.PlotLoss(filepath.Join(out, "loss.png"), curves, inspect.WithTitle("KL(teacher ‖ student) per token"))
}
