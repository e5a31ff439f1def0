package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
)

// Sections of the grid.
const (
	sectionMain     = "main"
	sectionAblation = "ablation"
)

// cell is one training run of the grid: a variant at a rank, seed and peak learning
// rate (the teacher is the task's).
type cell struct {
	section string
	variant Variant
	rank    int
	seed    uint64
	lr      float64
}

// name names the run's files: "powerlaw-r2-lrlora-s1-lr0.001".
func (cl cell) name(teacher string) string {
	return fmt.Sprintf("%s-r%d-%s-s%d-lr%g", teacher, cl.rank, cl.variant.Name, cl.seed, cl.lr)
}

// cells lists the runs on teacher: the main grid (ranks × variants × seeds × their
// learning rates), then the ablations if teacher is one of ablation_teachers.
func (c Config) cells(teacher string) []cell {
	var out []cell
	add := func(section string, ranks []int, vs []Variant) {
		for _, r := range ranks {
			for _, v := range vs {
				for _, s := range c.Seeds {
					for _, lr := range c.lrs(v) {
						out = append(out, cell{section: section, variant: v, rank: r, seed: s, lr: lr})
					}
				}
			}
		}
	}
	for _, t := range c.Teachers {
		if t == teacher {
			add(sectionMain, c.Ranks, c.variants())
		}
	}
	for _, t := range c.AblationTeachers {
		if t == teacher {
			add(sectionAblation, c.AblationRanks, c.Ablations)
		}
	}
	return out
}

// key identifies what a cell trains, so that an ablation identical to a main run (the
// ablations' baseline) is trained once: the resolved adapter spec, seed and lr.
func (c Config) key(cl cell) (string, error) {
	spec, err := c.adapterSpec(cl.variant, cl.rank)
	if err != nil {
		return "", err
	}
	raw, err := json.Marshal(spec.Resolved())
	return fmt.Sprintf("%s|%d|%g", raw, cl.seed, cl.lr), err
}

// Stat is a mean ± sample standard deviation (n − 1 in the denominator; 0 for one
// value) over seeds.
type Stat struct {
	Mean float64 `json:"mean"`
	Std  float64 `json:"std"`
}

func stat(xs []float64) Stat {
	var s Stat
	for _, x := range xs {
		s.Mean += x / float64(len(xs))
	}
	if len(xs) < 2 {
		return s
	}
	var ss float64
	for _, x := range xs {
		ss += (x - s.Mean) * (x - s.Mean)
	}
	s.Std = math.Sqrt(ss / float64(len(xs)-1))
	return s
}

// Group is one (section, teacher, rank, variant, lr) over its seeds.
type Group struct {
	Section         string  `json:"section"`
	Teacher         string  `json:"teacher"`
	Rank            int     `json:"rank"`
	Variant         string  `json:"variant"`
	LR              float64 `json:"lr"`
	Seeds           int     `json:"seeds"`
	TrainableParams int64   `json:"trainable_params"`
	Val             Stat    `json:"val_kl"`  // chooses the learning rate
	Test            Stat    `json:"test_kl"` // reported
	Train           Stat    `json:"train_kl"`
	SRDelta         Stat    `json:"sr_delta"` // of each run's mean over modules
	SRBA            Stat    `json:"sr_ba"`
	ConstShare      Stat    `json:"const_share"`
	Best            bool    `json:"best"` // lowest mean validation KL of its variant
}

// aggregate groups results by (section, teacher, rank, variant, lr) in first-seen order,
// computes each group's statistics over seeds and marks, per (section, teacher, rank,
// variant), the group with the lowest mean validation KL (the first on a tie).
func aggregate(results []*Result) []*Group {
	type gk struct {
		section, teacher, variant string
		rank                      int
		lr                        float64
	}
	var order []gk
	runs := map[gk][]*Result{}
	for _, r := range results {
		k := gk{r.Section, r.Teacher, r.Variant, r.Rank, r.LR}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
		}
		runs[k] = append(runs[k], r)
	}
	var out []*Group
	best := map[gk]*Group{} // lr zeroed
	for _, k := range order {
		rs := runs[k]
		var val, test, train, srd, srba, cs []float64
		for _, r := range rs {
			val, test, train = append(val, r.ValKL), append(test, r.EvalKL), append(train, r.FinalTrainKL)
			srd, srba = append(srd, meanOf(r.SRDelta)), append(srba, meanOf(r.SRBA))
			cs = append(cs, r.ConstShare)
		}
		g := &Group{Section: k.section, Teacher: k.teacher, Rank: k.rank, Variant: k.variant, LR: k.lr,
			Seeds: len(rs), TrainableParams: rs[0].TrainableParams, Val: stat(val), Test: stat(test),
			Train: stat(train), SRDelta: stat(srd), SRBA: stat(srba), ConstShare: stat(cs)}
		out = append(out, g)
		bk := k
		bk.lr = 0
		if b, ok := best[bk]; !ok || g.Val.Mean < b.Val.Mean {
			best[bk] = g
		}
	}
	for _, g := range best {
		g.Best = true
	}
	return out
}

// meanOf is the mean of a per-module map (0 for an empty one).
func meanOf(m map[string]float64) float64 {
	s := 0.0
	for _, k := range slices.Sorted(maps.Keys(m)) { // a fixed order: the same sum every time
		s += m[k] / float64(len(m))
	}
	return s
}
