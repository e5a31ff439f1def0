package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadValidConfig(t *testing.T) {
	path, dir := fixture(t)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Checkpoint.Dir != filepath.Join(dir, "run", "checkpoints") || c.Train.MaxSteps != 10 {
		t.Errorf("checkpoint.dir %q max_steps %d", c.Checkpoint.Dir, c.Train.MaxSteps)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	// A sharded backbone on GPUs is gathered through NCCL: the configuration is valid.
	if _, err := Load(path, []string{"dist.shard_group_size=2", "train.device=cuda"}); err != nil {
		t.Errorf("sharded on cuda: %v", err)
	}
}

func TestValidateFindsEachProblem(t *testing.T) {
	cases := []struct {
		set  []string
		key  string
		want string // in the message
	}{
		{[]string{"model.path="}, "model.path", "`model.path` is not set"},
		{[]string{"model.path=/nonexistent/m"}, "model.path", "does not exist"},
		{[]string{"model.path=DIR/train.json"}, "model.path", "is not a directory"},
		{[]string{"model.path=DIR"}, "model.path", "has no config.json"},
		{[]string{"model.dtype=bf16"}, "model.dtype", `is "bf16" at --set model.dtype=bf16; want float32 or bfloat16`},
		{[]string{"model.dtype=bfloat61"}, "model.dtype", "did you mean `bfloat16`?"},
		{[]string{"model.delta_per_step=false", "model.split_delta=true"}, "model.split_delta", "is true while model.delta_per_step is false"},
		{[]string{"model.loss_chunk=-4"}, "model.loss_chunk", "is -4"},
		{[]string{"adapter.method=lr-lora"}, "adapter.method", "did you mean `lrlora`?"},
		{[]string{"adapter.r=0"}, "adapter.r", "want an integer ≥ 1"},
		{[]string{"adapter.alpha=-1"}, "adapter.alpha", "want a finite number > 0"},
		{[]string{"adapter.alpha=.nan"}, "adapter.alpha", "is NaN"},
		{[]string{"adapter.dropout=1"}, "adapter.dropout", "want a finite number ≥ 0 and < 1"},
		{[]string{"adapter.target_modules=[]"}, "adapter.target_modules", "is empty"},
		{[]string{"adapter.target_modules=regex:(q"}, "adapter.target_modules", "invalid regex"},
		{[]string{"adapter.target_modules=[q, '']"}, "adapter.target_modules", "empty module name"},
		{[]string{"adapter.phi.k=1"}, "adapter.phi.k", "want an integer ≥ 2"},
		{[]string{"adapter.phi.l=0"}, "adapter.phi.l", "want a finite number > 0"},
		{[]string{"adapter.phi.l=.inf"}, "adapter.phi.l", "is +Inf"},
		{[]string{"adapter.phi.grid=chebychev"}, "adapter.phi.grid", "did you mean `chebyshev`?"},
		{[]string{"adapter.phi.basis=spline"}, "adapter.phi.basis", "did you mean `bspline`?"},
		{[]string{"adapter.phi.share=everything"}, "adapter.phi.share", "want none, grid, bandwidth or all"},
		{[]string{"adapter.sine_omega=0"}, "adapter.sine_omega", "want a finite number > 0"},
		{[]string{"data.format="}, "data.format", "`data.format` is not set"},
		{[]string{"data.format=alpaca"}, "data.format", "did you mean `alpaca_json`?"},
		{[]string{"data.train=[]"}, "data.train", "is empty"},
		{[]string{"data.train=DIR/nope.json"}, "data.train", "nope.json\", which does not exist"},
		{[]string{"data.eval=DIR/model"}, "data.eval", "is a directory"},
		{[]string{"data.max_len=1"}, "data.max_len", "want an integer ≥ 2"},
		{[]string{"data.format=classification_jsonl", "data.packing=true"}, "data.packing", "classification"},
		{[]string{"data.labels=[a, b]"}, "data.labels", "labels apply to classification_jsonl only"},
		{[]string{"data.format=classification_jsonl", "data.labels=[a, a]"}, "data.labels", `lists "a" twice`},
		{[]string{"data.format=classification_jsonl", "data.labels=[a]", "data.regression=true"}, "data.labels", "regression"},
		{[]string{"data.regression=true"}, "data.regression", "classification_jsonl only"},
		{[]string{"data.template=chatml"}, "data.template", `unknown template "chatml"`},
		{[]string{"data.template.with_input='{instruction}'", "data.template.no_input='{instruction}'"}, "data.template", "{input}"},
		{[]string{"data.last_batch=keep"}, "data.last_batch", "want pad or drop"},
		{[]string{"train.epochs=2"}, "train.epochs", "set one of them: max_steps or epochs"},
		{[]string{"train.max_steps=-1"}, "train.max_steps", "want an integer ≥ 0"},
		{[]string{"train.micro_batch_size=0"}, "train.micro_batch_size", "≥ 1"},
		{[]string{"train.grad_accum_steps=0"}, "train.grad_accum_steps", "≥ 1"},
		{[]string{"train.lr=0"}, "train.lr", "want a finite number > 0"},
		{[]string{"train.weight_decay=-0.1"}, "train.weight_decay", "≥ 0"},
		{[]string{"train.betas=[0.9, 1]"}, "train.betas", "< 1"},
		{[]string{"train.eps=0"}, "train.eps", "> 0"},
		{[]string{"train.warmup_ratio=1"}, "train.warmup_ratio", "< 1"},
		{[]string{"train.schedule=cosin"}, "train.schedule", "did you mean `cosine`?"},
		{[]string{"train.grad_clip=-1"}, "train.grad_clip", "≥ 0"},
		{[]string{"train.log_every=0"}, "train.log_every", "≥ 1"},
		{[]string{"train.compute_dtype=float16"}, "train.compute_dtype", "want float32 or bfloat16"},
		{[]string{"data.eval=[]", "train.eval_every=5"}, "train.eval_every", "data.eval is empty"},
		{[]string{"train.early_stopping_patience=2"}, "train.early_stopping_patience", "needs data.eval and train.eval_every > 0"},
		{[]string{"checkpoint.every=-1"}, "checkpoint.every", "≥ 0"},
		{[]string{"checkpoint.keep_last=-2"}, "checkpoint.keep_last", "≥ 0"},
		{[]string{"checkpoint.resume=DIR/ck-5"}, "checkpoint.resume", "does not exist"},
		{[]string{"checkpoint.resume="}, "checkpoint.resume", "want auto, never or a checkpoint directory"},
		{[]string{"export.dtype=int8"}, "export.dtype", "want float32, bfloat16 or float16"},
		{[]string{"export.max_shard_size=5 gigs"}, "export.max_shard_size", "want e.g. 5GB"},
		{[]string{"output.dir=", "checkpoint.dir=x", "export.dir=y"}, "output.dir", "is empty"},
		{[]string{"dist.backend=mpi"}, "dist.backend", "want auto, nccl or gloo"},
		{[]string{"dist.timeout=-1s"}, "dist.timeout", "want a positive duration"},
		{[]string{"train.device=gpu"}, "train.device", "want auto, cpu, cuda or cuda:N"},
		{[]string{"dist.shard_group_size=0"}, "dist.shard_group_size", "want 1 (no sharding)"},
		{[]string{"dist.shard_prefetch=-1"}, "dist.shard_prefetch", "want 0 (gather each block when needed) to 16"},
		{[]string{"dist.shard_prefetch=17"}, "dist.shard_prefetch", "want 0 (gather each block when needed) to 16"},
		{[]string{"train.device=cuda:x"}, "train.device", "want auto, cpu, cuda or cuda:N"},
		{[]string{"train.device=cpu", "dist.backend=nccl"}, "dist.backend", "NCCL reduces GPU memory"},
	}
	path, dir := fixture(t)
	for _, tc := range cases {
		var set []string
		for _, s := range tc.set {
			set = append(set, strings.ReplaceAll(s, "DIR", dir))
		}
		_, err := Load(path, set)
		if err == nil {
			t.Errorf("--set %v: no error", tc.set)
			continue
		}
		l := issuesOf(t, err)
		i := findIssue(l, tc.key)
		if i == nil || !errors.Is(i, ErrInvalid) || !strings.Contains(i.Error(), tc.want) {
			t.Errorf("--set %v: %v\nwant an ErrInvalid issue for %s containing %q", tc.set, err, tc.key, tc.want)
		}
		if len(l) != 1 {
			t.Errorf("--set %v: %d issues, want 1: %v", tc.set, len(l), err)
		}
	}
}

func TestValidateListsAllProblemsAtOnce(t *testing.T) {
	path, dir := fixture(t)
	_, err := Load(path, []string{"adapter.r=0", "train.lr=-1", "data.train=" + dir + "/gone.json", "dist.backend=x"})
	l := issuesOf(t, err)
	var keys []string
	for _, i := range l {
		keys = append(keys, i.Key)
	}
	if strings.Join(keys, " ") != "adapter.r data.train train.lr dist.backend" {
		t.Errorf("issue keys %v\n%v", keys, err)
	}
	if !strings.HasPrefix(err.Error(), "config: 4 problems:\n  - `adapter.r` is 0 at --set adapter.r=0; want an integer ≥ 1") {
		t.Errorf("message:\n%v", err)
	}
}

func TestValidateNamesTheFileLine(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "cfg.yaml", "model:\n  path: nowhere\n  dtype: float64\n")
	_, err := Load(path, nil)
	l := issuesOf(t, err)
	if i := findIssue(l, "model.dtype"); i == nil || i.Where != path+":3" {
		t.Errorf("model.dtype issue %v, want it at %s:3", i, path)
	}
	if i := findIssue(l, "model.path"); i == nil || i.Where != path+":2" {
		t.Errorf("model.path issue %v, want it at %s:2", i, path)
	}
	if i := findIssue(l, "data.format"); i == nil || i.Where != "" {
		t.Errorf("data.format issue %v, want no place (a default)", i)
	}
}

func TestTextFileAcceptsDirectories(t *testing.T) {
	path, dir := fixture(t)
	if _, err := Load(path, []string{"data.format=text_file", "data.train=" + dir + "/model", "data.eval=[]"}); err != nil {
		t.Errorf("text_file with a directory: %v", err)
	}
	writeFile(t, dir, "ck/step-1/manifest.json", "{}")
	if _, err := Load(path, []string{"checkpoint.resume=" + dir + "/ck/step-1"}); err != nil {
		t.Errorf("resume from an existing directory: %v", err)
	}
}
