package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lrtrain/lrtrain/inspect"
)

// taskSummary is what the report says about a teacher.
type taskSummary struct {
	Teacher     string             `json:"teacher"`
	RelNorm     float64            `json:"relative_norm"` // mean ‖ΔW*‖_F/‖W0‖_F
	TeacherSR   float64            `json:"mean_stable_rank"`
	ModuleSR    map[string]float64 `json:"stable_rank"`
	BaseTrainKL float64            `json:"base_train_kl"`
	BaseValKL   float64            `json:"base_val_kl"`
	BaseEvalKL  float64            `json:"base_eval_kl"`
}

func (t *task) summary() *taskSummary {
	return &taskSummary{Teacher: t.teacher, RelNorm: t.teacherRelNorm, TeacherSR: meanOf(t.teacherSR),
		ModuleSR: t.teacherSR, BaseTrainKL: t.baseTrainKL, BaseValKL: t.baseValKL, BaseEvalKL: t.baseEvalKL}
}

// allTeachers is teachers then the ablation teachers not among them.
func (c Config) allTeachers() []string {
	out := slices.Clone(c.Teachers)
	for _, t := range c.AblationTeachers {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// writeReport writes results.md, results.json and the loss plots.
func writeReport(c Config, tasks []*taskSummary, results []*Result, out, cfgPath string, took time.Duration, threads int) error {
	groups := aggregate(results)
	var b strings.Builder
	fmt.Fprintf(&b, "# rank experiment\n\n`go run ./experiments/rank --config %s --out %s` (%d runs, %s wall, %d intra-op threads)\n\n",
		cfgPath, out, len(results), took.Round(time.Second), threads)
	fmt.Fprintf(&b, "Students: %s, adapters on %s; seeds %v (adapter init and batch order; base, teachers and data from seed %d); "+
		"%d steps of %d×%d tokens, AdamW, warmup %.0f%% then linear decay, grad clip %g; K = %d, L = %g unless a variant says otherwise.\n\n",
		c.Preset, c.Targets, c.Seeds, c.Seed, c.Steps, c.Batch, c.SeqLen, 100*c.WarmupRatio, c.GradClip, c.K, c.L)
	fmt.Fprintf(&b, "KL(teacher ‖ student) per token, nats. The learning rate of each (teacher, r, variant) is the one with the "+
		"lowest mean validation KL over seeds (%d validation sequences, separate from the %d held-out sequences reported). "+
		"± is the sample standard deviation over seeds. sr is the stable rank ‖X‖²_F/σ²_max, averaged over modules; "+
		"const is the share of ‖ΔW‖²_F that is one constant added to every entry.\n\n", c.ValSequences, c.EvalSequences)
	for _, t := range tasks {
		fmt.Fprintf(&b, "Teacher **%s**: ‖ΔW*‖_F/‖W0‖_F = %.3f per module, mean sr(ΔW*) %.2f; unadapted student KL train %.5f, val %.5f, held-out %.5f.\n\n",
			t.Teacher, t.RelNorm, t.TeacherSR, t.BaseTrainKL, t.BaseValKL, t.BaseEvalKL)
	}
	for _, sec := range []string{sectionMain, sectionAblation} {
		title := "## Best learning rate per variant"
		if sec == sectionAblation {
			title = "## Ablations (best learning rate per variant)"
		}
		table(&b, title, groups, func(g *Group) bool { return g.Section == sec && g.Best })
	}
	table(&b, "## Every learning rate", groups, func(g *Group) bool { return true })
	if err := os.WriteFile(filepath.Join(out, "results.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())
	raw, err := json.MarshalIndent(map[string]any{
		"config": c, "teachers": tasks, "groups": groups, "results": results, "seconds": took.Seconds(), "threads": threads,
	}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "results.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	return plots(c, groups, out)
}

// table writes the groups that keep selects, if any, under title.
func table(b *strings.Builder, title string, groups []*Group, keep func(*Group) bool) {
	var rows []*Group
	for _, g := range groups {
		if keep(g) {
			rows = append(rows, g)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "%s\n\n| section | teacher | r | variant | lr | params | held-out KL | val KL | train KL | sr(ΔW) | sr(B·A) | const |\n", title)
	fmt.Fprintf(b, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, g := range rows {
		mark := ""
		if g.Best {
			mark = " *"
		}
		fmt.Fprintf(b, "| %s | %s | %d | %s | %g%s | %d | %s | %s | %s | %s | %s | %s |\n",
			g.Section, g.Teacher, g.Rank, g.Variant, g.LR, mark, g.TrainableParams, pm(g.Test, 5), pm(g.Val, 5),
			pm(g.Train, 5), pm(g.SRDelta, 3), pm(g.SRBA, 3), pm(g.ConstShare, 3))
	}
	fmt.Fprintf(b, "\n(* the learning rate chosen on validation KL)\n\n")
}

// pm formats mean ± std with digits decimals.
func pm(s Stat, digits int) string {
	return fmt.Sprintf("%.*f ± %.*f", digits, s.Mean, digits, s.Std)
}

// plots draws, per (teacher, rank) of the main grid, the first seed's loss curve at
// each variant's chosen learning rate.
func plots(c Config, groups []*Group, out string) error {
	type tr struct {
		teacher string
		rank    int
	}
	curves := map[tr][]inspect.LossCurve{}
	var order []tr
	for _, g := range groups {
		if g.Section != sectionMain || !g.Best {
			continue
		}
		k := tr{g.Teacher, g.Rank}
		if _, ok := curves[k]; !ok {
			order = append(order, k)
		}
		v := Variant{Name: g.Variant}
		name := cell{variant: v, rank: g.Rank, seed: c.Seeds[0], lr: g.LR}.name(g.Teacher)
		lc, err := inspect.ReadLossCurve(metricsPath(out, name))
		if err != nil {
			return err
		}
		curves[k] = append(curves[k], lc)
	}
	for _, k := range order {
		path := filepath.Join(out, fmt.Sprintf("loss_%s_r%d.png", k.teacher, k.rank))
		title := fmt.Sprintf("KL(teacher ‖ student), %s teacher, r = %d, seed %d", k.teacher, k.rank, c.Seeds[0])
		if err := inspect.PlotLoss(path, curves[k], inspect.WithTitle(title)); err != nil {
			return err
		}
	}
	return nil
}
