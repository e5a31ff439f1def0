package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/spf13/cobra"

	"github.com/lrtrain/lrtrain/evaluate"
	"github.com/lrtrain/lrtrain/inspect"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/train"
)

// Files lrtrain inspect writes into --out.
const (
	inspectTable    = "stable_rank.md"
	inspectRankPlot = "stable_rank.png"
	inspectPhiPlot  = "phi.png"
	inspectSpectra  = "spectra.png"
	inspectLossPlot = "loss.png"
	inspectJSON     = "adapters.json"
	inspectOffset   = "phi_offset.md"
)

func newInspectCmd() *cobra.Command {
	var ckpt, run, out, modelDir, modules string
	var points int
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Tabulate and plot what the adapters learned: stable rank, φ, spectra, loss",
		Long: `inspect loads a checkpoint's adapters onto the base model and writes into --out:

  stable_rank.md   per-module stable rank ‖X‖²_F/σ²_max of ΔW next to that of B·A
                   (the update plain LoRA makes with the same factors), with means
                   over attention and MLP modules (also printed)
  stable_rank.png  the same by depth, attention vs MLP, ΔW solid and B·A dashed
  phi.png          φ of the chosen modules on [−L−1, L+1] (LR-LoRA only)
  spectra.png      singular values (float64 SVD) of ΔW and B·A of the chosen modules
  loss.png         training and evaluation loss from the run's metrics.jsonl
  phi_offset.md    per-module φ(0), the paper's φ(0), φ'(0) and the share of ‖ΔW‖² in
                   its constant part (also printed): a share near 100 % is the a-first
                   failure mode that adapter.phi.center or phi.residual remove
  adapters.json    every module's stable ranks, ‖ΔW‖_F, singular values and the above

The chosen modules are, by default, the first attention and the first MLP module of
the first, middle and last layer; --modules takes a regular expression instead.`,
		Example: `  lrtrain inspect --run runs/tiny --out runs/tiny/inspect
  lrtrain inspect --checkpoint runs/tiny/checkpoints/step-000200 --out insp --modules 'layers\.3\..*(q_proj|down_proj)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			var pick *regexp.Regexp
			if modules != "" {
				re, err := regexp.Compile(modules)
				if err != nil {
					return usageError{fmt.Errorf("--modules: %w", err)}
				}
				pick = re
			}
			m, err := openAdapted(ckpt, run, modelDir)
			if err != nil {
				return err
			}
			defer m.Close()
			stats, err := evaluate.AnalyzeAdapters(m.Model, evaluate.AnalyzeOptions{PhiPoints: points, Extra: m.shared()})
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			offsets, err := phiOffsets(m.Model.Adapters())
			if err != nil {
				return err
			}
			written, err := writeInspection(out, stats, chosen(stats, pick), m.run, offsets)
			if err != nil {
				return err
			}
			rows, err := layerRanks(stats)
			if err != nil {
				return err
			}
			if err := inspect.WriteStableRankTable(cmd.OutOrStdout(), rows, inspect.Text); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout())
			if err := inspect.WritePhiOffsetTable(cmd.OutOrStdout(), offsets, inspect.Text); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %v to %s\n", written, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&ckpt, "checkpoint", "", "checkpoint directory (step-NNNNNN) or checkpoint root")
	f.StringVar(&run, "run", "", "run directory (its newest valid checkpoint, and metrics.jsonl for the loss plot)")
	f.StringVar(&out, "out", "", "output directory for the table and plots")
	f.StringVar(&modelDir, "model", "", "base model directory (default: the one the checkpoint records)")
	f.StringVar(&modules, "modules", "", "regular expression choosing the modules of the φ and spectrum plots")
	f.IntVar(&points, "phi-points", evaluate.DefaultPhiPoints, "points at which φ is sampled")
	return cmd
}

func layerRanks(stats []evaluate.AdapterStats) ([]inspect.LayerRank, error) {
	var rows []inspect.LayerRank
	for _, s := range stats {
		r, err := inspect.NewLayerRank(s.Name, s.SRDelta, s.SRBA)
		if err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// chosen picks the modules of the φ and spectrum plots: those pick matches, or the
// first attention and the first MLP module of the first, middle and last layer.
func chosen(stats []evaluate.AdapterStats, pick *regexp.Regexp) []evaluate.AdapterStats {
	var out []evaluate.AdapterStats
	if pick != nil {
		for _, s := range stats {
			if pick.MatchString(s.Name) {
				out = append(out, s)
			}
		}
		return out
	}
	var layers []int
	for _, s := range stats {
		if l, _, err := inspect.ParseModule(s.Name); err == nil && !slices.Contains(layers, l) {
			layers = append(layers, l)
		}
	}
	slices.Sort(layers)
	var want []int
	if len(layers) > 0 {
		want = []int{layers[0], layers[len(layers)/2], layers[len(layers)-1]}
	}
	seen := map[string]bool{}
	for _, s := range stats {
		l, kind, err := inspect.ParseModule(s.Name)
		key := fmt.Sprint(l, kind)
		if err == nil && slices.Contains(want, l) && !seen[key] {
			seen[key] = true
			out = append(out, s)
		}
	}
	return out
}

// writeInspection writes the table, the plots and adapters.json; the loss plot only
// when runDir has a metrics file with losses. It returns the files written.
func writeInspection(out string, stats, picked []evaluate.AdapterStats, runDir string, offsets []inspect.PhiOffset) ([]string, error) {
	rows, err := layerRanks(stats)
	if err != nil {
		return nil, err
	}
	var written []string
	var table bytes.Buffer
	if err := inspect.WriteStableRankTable(&table, rows, inspect.Markdown); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, inspectTable), table.Bytes(), 0o644); err != nil {
		return nil, err
	}
	written = append(written, inspectTable)
	table.Reset()
	if err := inspect.WritePhiOffsetTable(&table, offsets, inspect.Markdown); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, inspectOffset), table.Bytes(), 0o644); err != nil {
		return nil, err
	}
	written = append(written, inspectOffset)
	if err := inspect.PlotStableRank(filepath.Join(out, inspectRankPlot), rows); err != nil {
		return nil, err
	}
	written = append(written, inspectRankPlot)

	var curves []inspect.Curve
	var spectra []inspect.Spectrum
	L := 0.0
	for _, s := range picked {
		if len(s.SigmaDelta) > 0 && s.SigmaDelta[0] > 0 && len(s.SigmaBA) > 0 && s.SigmaBA[0] > 0 {
			spectra = append(spectra, inspect.Spectrum{Name: s.Name, Delta: s.SigmaDelta, BA: s.SigmaBA})
		}
		if s.PhiX != nil {
			curves = append(curves, inspect.Curve{Name: s.Name, X: s.PhiX, Y: s.PhiY})
			L = -s.PhiX[0] - 1
		}
	}
	if len(curves) > 0 {
		if err := inspect.PlotPhi(filepath.Join(out, inspectPhiPlot), L, curves); err != nil {
			return nil, err
		}
		written = append(written, inspectPhiPlot)
	}
	if len(spectra) > 0 {
		if err := inspect.PlotSpectra(filepath.Join(out, inspectSpectra), spectra); err != nil {
			return nil, err
		}
		written = append(written, inspectSpectra)
	}
	if runDir != "" {
		c, err := inspect.ReadLossCurve(filepath.Join(runDir, train.MetricsFile))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		case len(c.Train)+len(c.Eval) > 0:
			if err := inspect.PlotLoss(filepath.Join(out, inspectLossPlot), []inspect.LossCurve{c}); err != nil {
				return nil, err
			}
			written = append(written, inspectLossPlot)
		}
	}
	raw, err := json.MarshalIndent(adapterJSON(stats, offsets), "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(out, inspectJSON), append(raw, '\n'), 0o644); err != nil {
		return nil, err
	}
	return append(written, inspectJSON), nil
}

type adapterRecord struct {
	Module     string    `json:"module"`
	Method     string    `json:"method"`
	SRDelta    float64   `json:"stable_rank_delta"`
	SRBA       float64   `json:"stable_rank_ba"`
	NormDelta  float64   `json:"norm_delta"`
	SigmaDelta []float64 `json:"singular_values_delta"`
	SigmaBA    []float64 `json:"singular_values_ba"`
	Phi0       float64   `json:"phi_at_0"`
	RawPhi0    float64   `json:"paper_phi_at_0"`
	Slope0     float64   `json:"phi_slope_at_0"`
	ConstShare float64   `json:"constant_share"`
}

func adapterJSON(stats []evaluate.AdapterStats, offsets []inspect.PhiOffset) []adapterRecord {
	byName := map[string]inspect.PhiOffset{}
	for _, o := range offsets {
		byName[o.Module] = o
	}
	var out []adapterRecord
	for _, s := range stats {
		o := byName[s.Name]
		out = append(out, adapterRecord{Module: s.Name, Method: s.Method.String(), SRDelta: s.SRDelta, SRBA: s.SRBA,
			NormDelta: s.NormDelta, SigmaDelta: s.SigmaDelta, SigmaBA: s.SigmaBA,
			Phi0: o.Phi0, RawPhi0: o.RawPhi0, Slope0: o.Slope0, ConstShare: o.ConstShare})
	}
	return out
}

// phiOffsets is each adapter's φ(0), φ'(0) and constant share of ‖ΔW‖² (lrlora.Offset).
func phiOffsets(ads []*lrlora.Adapter) ([]inspect.PhiOffset, error) {
	var out []inspect.PhiOffset
	for _, ad := range ads {
		o, err := ad.Offset()
		if err != nil {
			return nil, err
		}
		out = append(out, inspect.PhiOffset{Module: ad.Name(), RawPhi0: o.RawPhi0, Phi0: o.Phi0, Slope0: o.Slope0,
			ConstShare: o.ConstShare})
	}
	return out, nil
}
