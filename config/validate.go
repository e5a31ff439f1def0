package config

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/lrtrain/lrtrain/data"
)

// Choices of the enumerated keys (the adapter's are in package adapter).
var (
	ModelDTypes  = []string{"float32", "bfloat16"}
	ExportDTypes = []string{"float32", "bfloat16", "float16"}
	Schedules    = []string{"linear", "cosine", "constant"}
	LastBatches  = []string{"pad", "drop"}
	Backends     = []string{"auto", "nccl", "gloo"}
)

// Validate checks every value and combination before any heavy work: ranges, enumerated
// names, settings that exclude each other (packing with classification, max_steps with
// epochs, early stopping without evaluation data) and that the model directory, the data
// files and a resume checkpoint exist (relative paths are taken from the working
// directory). It reports all problems at once as Issues wrapping ErrInvalid, each with
// the place its value came from.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.model()
	v.adapter()
	v.data()
	v.train()
	v.checkpoint()
	v.export()
	if c.Output.Dir == "" {
		v.bad("output.dir", "is empty", "the run directory is required")
	}
	v.oneOf("dist.backend", c.Dist.Backend, Backends)
	if c.Dist.ShardGroupSize < 1 {
		v.bad("dist.shard_group_size", fmt.Sprintf("is %d", c.Dist.ShardGroupSize), "want 1 (no sharding) or the ranks per shard group")
	}
	if c.Dist.ShardPrefetch < 0 || c.Dist.ShardPrefetch > maxShardPrefetch {
		v.bad("dist.shard_prefetch", fmt.Sprintf("is %d", c.Dist.ShardPrefetch), fmt.Sprintf("want 0 (gather each block when needed) to %d blocks gathered ahead", maxShardPrefetch))
	}
	if !validDevice(c.Train.Device) {
		v.bad("train.device", fmt.Sprintf("is %q", c.Train.Device), "want auto, cpu, cuda or cuda:N")
	} else if c.Dist.Backend == "nccl" && c.Train.Device == "cpu" {
		v.bad("dist.backend", "is nccl but `train.device` is cpu", "NCCL reduces GPU memory: use gloo (or auto) on the CPU, or train.device cuda")
	}
	if c.Dist.Timeout <= 0 {
		v.bad("dist.timeout", fmt.Sprintf("is %v", c.Dist.Timeout), "want a positive duration such as 30m")
	}
	return v.issues.orNil()
}

// maxShardPrefetch is shard.MaxPrefetch (config does not import the tensor packages).
const maxShardPrefetch = 16

// validDevice accepts auto, cpu, cuda and cuda:N.
func validDevice(d string) bool {
	switch d {
	case "auto", "cpu", "cuda":
		return true
	}
	n, ok := strings.CutPrefix(d, "cuda:")
	if !ok || n == "" || len(n) > 3 {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

type validator struct {
	c      *Config
	issues Issues
}

func (v *validator) bad(key, what, hint string) {
	v.issues = append(v.issues, &Issue{Err: ErrInvalid, Key: key, Where: v.c.where[key],
		Msg: fmt.Sprintf("`%s` %s", key, what), Hint: hint})
}

// oneOf checks an enumerated value, suggesting the nearest choice.
func (v *validator) oneOf(key, val string, choices []string) bool {
	for _, c := range choices {
		if val == c {
			return true
		}
	}
	hint := "want " + orList(choices)
	best, bestDist, low := "", maxDistance(val)+1, strings.ToLower(val)
	for _, c := range choices {
		if d := Distance(low, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	for _, c := range choices {
		if best == "" && len(low) >= 4 && strings.HasPrefix(c, low) {
			best = c
		}
	}
	if best != "" {
		hint = fmt.Sprintf("did you mean `%s`? (%s)", best, hint)
	}
	v.bad(key, fmt.Sprintf("is %q", val), hint)
	return false
}

func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// inRange checks lo ≤ x (or lo < x when open) and x < hi (hi = +Inf: no upper bound).
func (v *validator) inRange(key string, x, lo, hi float64, openLo bool) {
	ok := !math.IsNaN(x) && !math.IsInf(x, 0) && x < hi && (x > lo || (!openLo && x == lo))
	if ok {
		return
	}
	lower := "≥"
	if openLo {
		lower = ">"
	}
	want := fmt.Sprintf("want a finite number %s %g", lower, lo)
	if !math.IsInf(hi, 1) {
		want += fmt.Sprintf(" and < %g", hi)
	}
	v.bad(key, fmt.Sprintf("is %g", x), want)
}

func (v *validator) atLeast(key string, n, lo int) {
	if n < lo {
		v.bad(key, fmt.Sprintf("is %d", n), fmt.Sprintf("want an integer ≥ %d", lo))
	}
}

// exists checks a path: a directory when dir, else a regular file (or, when dirOK, a
// directory too).
func (v *validator) exists(key, path string, dir, dirOK bool) bool {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		v.bad(key, fmt.Sprintf("names %q, which does not exist", path), "")
	case dir && !st.IsDir():
		v.bad(key, fmt.Sprintf("names %q, which is not a directory", path), "")
	case !dir && !dirOK && st.IsDir():
		v.bad(key, fmt.Sprintf("names %q, which is a directory", path), "want a file")
	default:
		return true
	}
	return false
}

func (v *validator) model() {
	m := v.c.Model
	if m.Path == "" {
		v.bad("model.path", "is not set", "want a Hugging Face model directory")
	} else if v.exists("model.path", m.Path, true, false) {
		if _, err := os.Stat(filepath.Join(m.Path, "config.json")); err != nil {
			v.bad("model.path", fmt.Sprintf("names %q, which has no config.json", m.Path), "want a Hugging Face model directory")
		}
	}
	v.oneOf("model.dtype", m.DType, ModelDTypes)
	if m.SplitDelta && !m.DeltaPerStep {
		v.bad("model.split_delta", "is true while model.delta_per_step is false",
			"the ranks split the ΔW that delta_per_step holds for the step: set both, or neither")
	}
	if m.LossChunk < 0 {
		v.bad("model.loss_chunk", fmt.Sprintf("is %d", m.LossChunk), "want vocabulary rows per chunk, or 0 to choose them")
	}
}

// adapter reports adapter.Spec's problems, suggesting the nearest name for enumerated keys.
func (v *validator) adapter() {
	for _, p := range v.c.Adapter.Problems() {
		if p.Choices != nil {
			v.oneOf(p.Key, p.Value, p.Choices)
			continue
		}
		v.bad(p.Key, p.Msg, p.Want)
	}
}

func (v *validator) data() {
	d := v.c.Data
	format, err := data.ParseFormat(d.Format)
	if d.Format == "" {
		v.bad("data.format", "is not set", "want "+orList(data.Formats()))
	} else if err != nil {
		v.oneOf("data.format", d.Format, data.Formats())
	}
	kind := format.Kind()
	if len(d.Train) == 0 {
		v.bad("data.train", "is empty", "want the training file(s)")
	}
	for _, p := range d.Train {
		v.exists("data.train", p, false, format == data.TextFile)
	}
	for _, p := range d.Eval {
		v.exists("data.eval", p, false, format == data.TextFile)
	}
	v.atLeast("data.max_len", d.MaxLen, 2)
	if d.Packing && kind == data.KindClassification {
		v.bad("data.packing", "is true with a classification format", "classification takes one record per example; set packing: false")
	}
	if len(d.Labels) > 0 && kind != data.KindClassification && kind != 0 {
		v.bad("data.labels", "is set for format "+d.Format, "labels apply to classification_jsonl only")
	}
	if d.Regression && kind != data.KindClassification && kind != 0 {
		v.bad("data.regression", "is true for format "+d.Format, "regression applies to classification_jsonl only")
	}
	if d.Regression && len(d.Labels) > 0 {
		v.bad("data.labels", "is set with regression: true", "a regression has scores, not labels")
	}
	seen := map[string]bool{}
	for _, l := range d.Labels {
		if seen[l] {
			v.bad("data.labels", fmt.Sprintf("lists %q twice", l), "")
		}
		seen[l] = true
	}
	if _, err := d.Template.DataTemplate(); err != nil {
		v.bad("data.template", "is invalid", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	v.oneOf("data.last_batch", d.LastBatch, LastBatches)
}

func (v *validator) train() {
	t := v.c.Train
	v.atLeast("train.max_steps", t.MaxSteps, 0)
	v.atLeast("train.epochs", t.Epochs, 0)
	if t.MaxSteps > 0 && t.Epochs > 0 {
		v.bad("train.epochs", fmt.Sprintf("is %d and train.max_steps is %d", t.Epochs, t.MaxSteps),
			"set one of them: max_steps or epochs")
	}
	v.atLeast("train.micro_batch_size", t.MicroBatchSize, 1)
	v.atLeast("train.grad_accum_steps", t.GradAccumSteps, 1)
	v.inRange("train.lr", t.LR, 0, math.Inf(1), true)
	v.inRange("train.weight_decay", t.WeightDecay, 0, math.Inf(1), false)
	v.inRange("train.betas", t.Betas[0], 0, 1, false)
	v.inRange("train.betas", t.Betas[1], 0, 1, false)
	v.inRange("train.eps", t.Eps, 0, math.Inf(1), true)
	v.inRange("train.warmup_ratio", t.WarmupRatio, 0, 1, false)
	v.oneOf("train.schedule", t.Schedule, Schedules)
	v.inRange("train.grad_clip", t.GradClip, 0, math.Inf(1), false)
	v.atLeast("train.eval_every", t.EvalEvery, 0)
	v.atLeast("train.early_stopping_patience", t.EarlyStoppingPatience, 0)
	v.atLeast("train.log_every", t.LogEvery, 1)
	v.oneOf("train.compute_dtype", t.ComputeDType, ModelDTypes)
	noEval := len(v.c.Data.Eval) == 0
	if t.EvalEvery > 0 && noEval {
		v.bad("train.eval_every", fmt.Sprintf("is %d but data.eval is empty", t.EvalEvery), "give evaluation files or set eval_every: 0")
	}
	if t.EarlyStoppingPatience > 0 && (noEval || t.EvalEvery == 0) {
		v.bad("train.early_stopping_patience", fmt.Sprintf("is %d without periodic evaluation", t.EarlyStoppingPatience),
			"early stopping needs data.eval and train.eval_every > 0")
	}
}

func (v *validator) checkpoint() {
	k := v.c.Checkpoint
	if k.Dir == "" {
		v.bad("checkpoint.dir", "is empty", "")
	}
	v.atLeast("checkpoint.every", k.Every, 0)
	v.atLeast("checkpoint.keep_last", k.KeepLast, 0)
	switch k.Resume {
	case "auto", "never":
	case "":
		v.bad("checkpoint.resume", "is empty", "want auto, never or a checkpoint directory")
	default:
		v.exists("checkpoint.resume", k.Resume, true, false)
	}
}

func (v *validator) export() {
	e := v.c.Export
	if e.Dir == "" {
		v.bad("export.dir", "is empty", "")
	}
	if e.DType != v.c.Model.DType || v.c.where["export.dtype"] != "" { // else model.dtype's check covers it
		v.oneOf("export.dtype", e.DType, ExportDTypes)
	}
	if _, err := ParseSize(e.MaxShardSize); err != nil {
		v.bad("export.max_shard_size", fmt.Sprintf("is %q", e.MaxShardSize), "want e.g. 5GB, 500MiB or a byte count")
	}
}
