package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lrtrain/lrtrain/data"
	"github.com/lrtrain/lrtrain/evaluate"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/tokenizer"
)

type evalFlags struct {
	modelDir, ckpt, run, adapter, dataPath, format, task, labels, out string
	regression                                                        bool
	maxLen, batch, maxNew, limit                                      int
}

func newEvalCmd() *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate a model (optionally with a checkpoint's adapters) on a dataset",
		Long: `eval measures a model on a dataset, in eval mode and without autograd:

  lm               loss and perplexity over the labelled tokens (responses of
                   instruction data, all tokens of text data)
  classification   accuracy, F1 (binary for two classes, else macro), macro F1 and
                   MCC; Pearson, Spearman and MSE for a regression (num_labels 1) model
  multiple-choice  commonsense-170k style: the options come from each record's
                   "Answer format: a/b/…" line; the option whose response ("the
                   correct answer is <option>") is most likely wins
  generate         greedy decoding (no KV cache: slow beyond small models and short
                   answers) and answer extraction against the record's answer

With --checkpoint or --run the checkpoint's adapters are loaded onto its base model
(--model may name the same base elsewhere), and the data settings the run trained
with (format, labels, regression, max length, template) are the defaults. With
--adapter the adapters of an adapter directory in PEFT's layout are loaded onto
--model (default: the adapter's base_model_name_or_path when it is a local
directory): lrtrain export --adapter-only output, or a LoRA adapter saved by PEFT
(adapter_config.json + adapter_model.safetensors; DoRA, per-module ranks and other
PEFT features lrtrain's adapters lack are refused by name). The table goes to
stdout and the report, as JSON, to --out.`,
		Example: `  lrtrain eval --model /tmp/tiny-llama --data data/testdata/alpaca_tiny_eval.json --format alpaca_json --task lm
  lrtrain eval --run runs/cs --data cs_eval.json --task multiple-choice
  lrtrain eval --checkpoint runs/sst2/checkpoints/step-000300 --data dev.jsonl --task classification --out dev.json
  lrtrain eval --adapter peft-adapter --model /models/llama --data eval.json --format alpaca_json --task lm`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runEval(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.modelDir, "model", "", "model directory (the base model with --checkpoint/--run)")
	fl.StringVar(&f.ckpt, "checkpoint", "", "training checkpoint whose adapters to load (step directory or checkpoint root)")
	fl.StringVar(&f.run, "run", "", "run directory whose newest checkpoint to load")
	fl.StringVar(&f.adapter, "adapter", "", "adapter directory in PEFT's layout (adapter_config.json, adapter_model.safetensors) to load onto --model")
	fl.StringVar(&f.dataPath, "data", "", "dataset file (comma-separated for several)")
	fl.StringVar(&f.format, "format", "", "dataset format: "+strings.Join(data.Formats(), ", "))
	fl.StringVar(&f.task, "task", "lm", "task: "+strings.Join(evaluate.Tasks(), ", "))
	fl.StringVar(&f.labels, "labels", "", "classification label names in index order, comma-separated")
	fl.BoolVar(&f.regression, "regression", false, "classification labels are float scores")
	fl.IntVar(&f.maxLen, "max-len", 0, "most tokens per example (default: the run's, else 512)")
	fl.IntVar(&f.batch, "batch-size", evaluate.DefaultBatchSize, "examples per forward pass")
	fl.IntVar(&f.maxNew, "max-new-tokens", evaluate.DefaultMaxNewTokens, "generate: most new tokens per answer")
	fl.IntVar(&f.limit, "limit", 0, "evaluate only the first N records (0: all)")
	fl.StringVar(&f.out, "out", "", "JSON report file (default: <run>/eval-<task>.json with a run, else eval-<task>.json)")
	return cmd
}

func runEval(cmd *cobra.Command, f evalFlags) error {
	task, err := evaluate.ParseTask(f.task)
	if err != nil {
		return usageError{err}
	}
	if f.dataPath == "" {
		return usageError{fmt.Errorf("--data is required")}
	}
	if f.adapter != "" && (f.ckpt != "" || f.run != "") {
		return usageError{fmt.Errorf("give --adapter or --checkpoint/--run, not both")}
	}
	t := evalTarget{read: data.ReadConfig{Format: data.Format(f.format), Regression: f.regression},
		build: data.BuildConfig{MaxLen: f.maxLen}}
	if err := t.open(cmd, f); err != nil {
		return err
	}
	defer t.close()
	records, err := t.records(f)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(filepath.Join(t.modelDir, "tokenizer.json"))
	if err != nil {
		return err
	}
	p, err := evaluate.NewPipeline(tok, t.build)
	if err != nil {
		return err
	}
	rep, err := evaluate.Run(t.m, p, records, task, tok, evaluate.Options{BatchSize: f.batch, MaxNewTokens: f.maxNew})
	if err != nil {
		return err
	}
	rep.Model, f.task = t.modelDir, string(task)
	return writeEvalReport(cmd, f, rep, t.runDir)
}

// evalTarget is what eval measures: the model (with the adapters asked for), where it
// came from, and the data settings (the run's, where a run is given, under the flags).
type evalTarget struct {
	m                *model.Model
	close            func()
	runDir, modelDir string
	read             data.ReadConfig
	build            data.BuildConfig
}

// open loads the model: with a PEFT-layout adapter directory, with a checkpoint's or
// run's adapters (whose data settings become the defaults), or bare.
func (t *evalTarget) open(cmd *cobra.Command, f evalFlags) error {
	t.close = func() {}
	switch {
	case f.adapter != "":
		pm, err := openPEFT(f.adapter, f.modelDir, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		t.m, t.modelDir, t.close = pm.Model, pm.base, func() { pm.Close() }
	case f.ckpt != "" || f.run != "":
		am, err := openAdapted(f.ckpt, f.run, f.modelDir)
		if err != nil {
			return err
		}
		t.m, t.runDir, t.modelDir, t.close = am.Model, am.run, am.base, func() { am.Close() }
		d := am.adapters.Saved.Manifest.Options.Data
		if t.read.Format == "" {
			t.read.Format = data.Format(d.Format)
		}
		if f.labels == "" {
			t.read.Labels = d.Labels
		}
		t.read.Regression = t.read.Regression || d.Regression
		if t.build.MaxLen == 0 {
			t.build.MaxLen = d.MaxLen
		}
		t.build.Template = d.Template
	default:
		if f.modelDir == "" {
			return usageError{fmt.Errorf("--model is required (or --checkpoint/--run)")}
		}
		m, err := model.Load(f.modelDir)
		if err != nil {
			return err
		}
		t.m, t.modelDir, t.close = m, f.modelDir, func() { m.Close() }
	}
	return nil
}

// records reads the dataset (the first --limit records of it).
func (t *evalTarget) records(f evalFlags) ([]data.Record, error) {
	if f.labels != "" {
		t.read.Labels = strings.Split(f.labels, ",")
	}
	if t.build.MaxLen == 0 {
		t.build.MaxLen = 512
	}
	if t.read.Format == "" {
		return nil, usageError{fmt.Errorf("--format is required: %s", strings.Join(data.Formats(), ", "))}
	}
	t.read.Paths = strings.Split(f.dataPath, ",")
	ds, err := data.Read(t.read)
	if err != nil {
		return nil, err
	}
	records := ds.Records
	if f.limit > 0 && f.limit < len(records) {
		records = records[:f.limit]
	}
	return records, nil
}

// writeEvalReport prints the table and writes the JSON report (--out, by default
// eval-<task>.json in the run directory or here).
func writeEvalReport(cmd *cobra.Command, f evalFlags, rep *evaluate.Report, runDir string) error {
	rep.Data = f.dataPath
	if f.ckpt != "" || f.run != "" || f.adapter != "" {
		rep.Model = fmt.Sprintf("%s + adapters of %s", rep.Model, firstNonEmpty(f.ckpt, f.run, f.adapter))
	}
	if err := rep.Table(cmd.OutOrStdout()); err != nil {
		return err
	}
	out := f.out
	if out == "" {
		out = "eval-" + f.task + ".json"
		if runDir != "" {
			out = filepath.Join(runDir, out)
		}
	}
	raw, err := rep.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "report: %s\n", out)
	return nil
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}
