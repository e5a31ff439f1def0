package main

import (
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/optim"
)

// Config is the experiment (config.yaml describes every field).
type Config struct {
	Arch           string    `yaml:"arch"`
	Preset         string    `yaml:"preset"`
	InitStd        float64   `yaml:"init_std"`
	Seed           uint64    `yaml:"seed"`
	Targets        string    `yaml:"targets"`
	Rank           int       `yaml:"rank"`
	TeacherRank    int       `yaml:"teacher_rank"`
	TeacherScale   float64   `yaml:"teacher_scale"`
	Methods        []string  `yaml:"methods"`
	K              int       `yaml:"k"`
	L              float64   `yaml:"l"`
	SeqLen         int       `yaml:"seq_len"`
	TrainSequences int       `yaml:"train_sequences"`
	EvalSequences  int       `yaml:"eval_sequences"`
	Batch          int       `yaml:"batch"`
	Steps          int       `yaml:"steps"`
	LRs            []float64 `yaml:"lrs"`
	WarmupRatio    float64   `yaml:"warmup_ratio"`
	GradClip       float64   `yaml:"grad_clip"`
}

func readConfig(path string) (Config, error) {
	var c Config
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	for _, m := range c.Methods {
		spec, err := c.adapterSpec(m)
		if err == nil {
			err = spec.Validate()
		}
		if err != nil {
			return c, fmt.Errorf("%s: %w", path, err)
		}
	}
	switch {
	case c.Rank < 1 || c.TeacherRank < 1 || c.SeqLen < 2 || c.Batch < 1 || c.Steps < 1:
		return c, fmt.Errorf("%s: rank, teacher_rank, batch and steps must be ≥ 1 and seq_len ≥ 2", path)
	case len(c.LRs) == 0:
		return c, fmt.Errorf("%s: lrs is empty", path)
	case c.TrainSequences < c.Batch || c.EvalSequences < 1:
		return c, fmt.Errorf("%s: need train_sequences ≥ batch and eval_sequences ≥ 1", path)
	}
	return c, nil
}

// adapterSpec is the student's adapter for method: the paper's defaults with the
// experiment's targets, rank, K and L.
func (c Config) adapterSpec(method string) (adapter.Spec, error) {
	s := adapter.Default()
	var err error
	if s.Method, err = adapter.ParseMethod(method); err != nil {
		return s, err
	}
	if s.TargetModules, err = adapter.ParseTargets(c.Targets); err != nil {
		return s, err
	}
	s.R, s.K, s.L = c.Rank, c.K, c.L
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
