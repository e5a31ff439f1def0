package main

import (
	"bytes"
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/optim"
)

// Config is the experiment (config.yaml and reproduce.yaml describe every field).
type Config struct {
	Arch    string  `yaml:"arch"`
	Preset  string  `yaml:"preset"`
	InitStd float64 `yaml:"init_std"`
	// Seed fixes the base model, the teachers and the data; each run's seed (Seeds)
	// fixes its adapters' initialisation and its batch order.
	Seed    uint64   `yaml:"seed"`
	Seeds   []uint64 `yaml:"seeds"` // empty: [seed]
	Targets string   `yaml:"targets"`
	Rank    int      `yaml:"rank"`
	Ranks   []int    `yaml:"ranks"` // empty: [rank]
	// Teachers are lowrank (a rank-teacher_rank update) and/or powerlaw (a full-rank
	// update with singular values σ_i ∝ 1/i); both have ‖ΔW*‖_F = teacher_scale·‖W0‖_F
	// per module. Empty: [lowrank].
	Teachers     []string  `yaml:"teachers"`
	TeacherRank  int       `yaml:"teacher_rank"`
	TeacherScale float64   `yaml:"teacher_scale"`
	Methods      []string  `yaml:"methods"`  // plain methods, each a variant named after it
	Variants     []Variant `yaml:"variants"` // then these
	// Ablations are variants trained only at ablation_ranks on ablation_teachers.
	Ablations        []Variant `yaml:"ablations"`
	AblationRanks    []int     `yaml:"ablation_ranks"`
	AblationTeachers []string  `yaml:"ablation_teachers"`
	K                int       `yaml:"k"`
	L                float64   `yaml:"l"`
	SeqLen           int       `yaml:"seq_len"`
	TrainSequences   int       `yaml:"train_sequences"`
	EvalSequences    int       `yaml:"eval_sequences"` // the reported held-out (test) set
	ValSequences     int       `yaml:"val_sequences"`  // the set the learning rate is chosen on
	Batch            int       `yaml:"batch"`
	Steps            int       `yaml:"steps"`
	LRs              []float64 `yaml:"lrs"`
	WarmupRatio      float64   `yaml:"warmup_ratio"`
	GradClip         float64   `yaml:"grad_clip"`
}

// Variant is one adapter configuration of the grid: a method and φ's keys, written as
// in a training config's adapter.phi section (unset keys keep the paper's defaults
// with the experiment's k and l).
type Variant struct {
	Name   string    `yaml:"name" json:"name"`
	Method string    `yaml:"method" json:"method"`
	Phi    yaml.Node `yaml:"phi" json:"-"`
	LRs    []float64 `yaml:"lrs" json:"lrs,omitempty"` // empty: the experiment's lrs
}

func readConfig(path string) (Config, error) {
	var c Config
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.check(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// check validates every variant's adapter at every rank before any work.
func (c *Config) check() error {
	if len(c.Seeds) == 0 {
		c.Seeds = []uint64{c.Seed}
	}
	if len(c.Ranks) == 0 {
		c.Ranks = []int{c.Rank}
	}
	if len(c.Teachers) == 0 {
		c.Teachers = []string{teacherLowRank}
	}
	for _, t := range append(append([]string(nil), c.Teachers...), c.AblationTeachers...) {
		if t != teacherLowRank && t != teacherPowerLaw {
			return fmt.Errorf("teacher %q: want %s or %s", t, teacherLowRank, teacherPowerLaw)
		}
	}
	for _, v := range append(c.variants(), c.Ablations...) {
		for _, r := range append(append([]int(nil), c.Ranks...), c.AblationRanks...) {
			spec, err := c.adapterSpec(v, r)
			if err == nil {
				err = spec.Validate()
			}
			if err != nil {
				return fmt.Errorf("variant %q: %w", v.Name, err)
			}
		}
		if v.Name == "" {
			return fmt.Errorf("a variant has no name")
		}
	}
	switch {
	case !c.distinctNames():
		return fmt.Errorf("variant names repeat within methods+variants or within ablations")
	case c.TeacherRank < 1 || c.SeqLen < 2 || c.Batch < 1 || c.Steps < 1:
		return fmt.Errorf("teacher_rank, batch and steps must be ≥ 1 and seq_len ≥ 2")
	case len(c.LRs) == 0:
		return fmt.Errorf("lrs is empty")
	case c.TrainSequences < c.Batch || c.EvalSequences < 1 || c.ValSequences < 1:
		return fmt.Errorf("need train_sequences ≥ batch, eval_sequences ≥ 1 and val_sequences ≥ 1")
	case len(c.Ablations) > 0 && (len(c.AblationRanks) == 0 || len(c.AblationTeachers) == 0):
		return fmt.Errorf("ablations need ablation_ranks and ablation_teachers")
	}
	return nil
}

// distinctNames reports whether names are distinct within the main variants and within
// the ablations (an ablation may reuse a main variant's name, e.g. its baseline lrlora).
func (c Config) distinctNames() bool {
	seen := map[string]bool{}
	for _, v := range c.variants() {
		if seen[v.Name] {
			return false
		}
		seen[v.Name] = true
	}
	seen = map[string]bool{}
	for _, v := range c.Ablations {
		if seen[v.Name] {
			return false
		}
		seen[v.Name] = true
	}
	return true
}

// variants is the main grid's variants: methods, then variants.
func (c Config) variants() []Variant {
	var out []Variant
	for _, m := range c.Methods {
		out = append(out, Variant{Name: m, Method: m})
	}
	return append(out, c.Variants...)
}

// lrs is the learning-rate sweep of v.
func (c Config) lrs(v Variant) []float64 {
	if len(v.LRs) > 0 {
		return v.LRs
	}
	return c.LRs
}

// adapterSpec is the student's adapter for variant v at rank r: the paper's defaults
// with the experiment's targets, K and L, then v's method and φ keys.
func (c Config) adapterSpec(v Variant, r int) (adapter.Spec, error) {
	s := adapter.Default()
	var err error
	if s.Method, err = adapter.ParseMethod(v.Method); err != nil {
		return s, err
	}
	if s.TargetModules, err = adapter.ParseTargets(c.Targets); err != nil {
		return s, err
	}
	s.R, s.K, s.L = r, c.K, c.L
	if v.Phi.Kind != 0 {
		raw, err := yaml.Marshal(&v.Phi)
		if err != nil {
			return s, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true) // a mistyped φ key is an error, as in a training config
		if err := dec.Decode(&s.Phi); err != nil {
			return s, fmt.Errorf("phi: %w", err)
		}
	}
	return s, nil
}

// lrAt is the learning rate of step (0-based) for peak lr: linear warmup over
// ⌊warmup_ratio·steps⌋ steps, then linear decay, with the step itself counted
// (optim.StepIndex: the first step has lr/warm, the last lr/(steps − warm)).
func (c Config) lrAt(lr float64, step int) float64 {
	return c.schedule(lr).At(step)
}

// schedule is the experiment's learning-rate schedule for peak lr.
func (c Config) schedule(lr float64) optim.Schedule {
	return optim.Schedule{
		Kind:     optim.Linear,
		Peak:     lr,
		Warmup:   int(c.WarmupRatio * float64(c.Steps)),
		Total:    c.Steps,
		Counting: optim.StepIndex,
	}
}
