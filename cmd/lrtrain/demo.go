package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/experiments/layertask"
	"github.com/lrtrain/lrtrain/phiop"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	cfg := layertask.DefaultConfig()
	var out, methods string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Adapt one layer to a higher-rank target with lora, sinelora and lrlora",
		Long: `demo trains adapters of rank r on one frozen linear layer whose target update has
rank above r, and compares the methods at the same r and seed: training loss,
held-out loss, and the stable rank of the learned update ΔW next to that of B·A.
Per-step losses go to <out>/<method>.metrics.jsonl.`,
		Example: `  lrtrain demo
  lrtrain demo --steps 1000 --rank 4 --teacher-rank 32 --dim 128`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := newLogger(cmd.ErrOrStderr(), g)
			phiop.InitThreads()
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			var results []layertask.Result
			for _, name := range strings.Split(methods, ",") {
				m, err := adapter.ParseMethod(name)
				if err != nil {
					return usageError{err}
				}
				start := time.Now()
				f, err := os.Create(filepath.Join(out, m.String()+".metrics.jsonl"))
				if err != nil {
					return err
				}
				enc := json.NewEncoder(f)
				every := max(1, cfg.Steps/10)
				res, err := layertask.Run(cfg, m, func(step int, loss float64) {
					_ = enc.Encode(map[string]any{"method": m.String(), "step": step + 1, "loss": loss})
					if (step+1)%every == 0 || step == 0 {
						log.Info().Str("method", m.String()).Int("step", step+1).Float64("loss", loss).Msg("train")
					}
				})
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
				log.Info().Str("method", m.String()).Dur("took", time.Since(start).Round(time.Millisecond)).
					Float64("eval_loss", res.EvalLoss).Msg("done")
				results = append(results, res)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(w, "method\tparams\tfinal train loss\theld-out loss\tsr(ΔW)\tsr(BA)\tsr(Δ*)\t\n")
			for _, r := range results {
				fmt.Fprintf(w, "%s\t%d\t%.5f\t%.5f\t%.2f\t%.2f\t%.2f\t\n", r.Method, r.TrainableParams,
					r.Losses[len(r.Losses)-1], r.EvalLoss, r.StableRankDelta, r.StableRankBA, r.TeacherSR)
			}
			return w.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "runs/demo", "directory for the metrics files")
	f.StringVar(&methods, "methods", "lora,sinelora,lrlora", "comma-separated adapter methods to compare")
	f.IntVar(&cfg.Dim, "dim", cfg.Dim, "layer width d (d_in = d_out)")
	f.IntVar(&cfg.Rank, "rank", cfg.Rank, "adapter rank r")
	f.IntVar(&cfg.TeacherRank, "teacher-rank", cfg.TeacherRank, "rank of the target update Δ*")
	f.IntVar(&cfg.Steps, "steps", cfg.Steps, "optimizer steps")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "samples per step")
	f.Float64Var(&cfg.LR, "lr", cfg.LR, "peak learning rate (10% warmup, linear decay)")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed for data and initialisation")
	return cmd
}
