package inspect

import (
	"fmt"
	"sort"

	"gonum.org/v1/plot/plotter"
)

// kindMean is the mean stable rank of the modules of one kind in one layer.
type kindMean struct {
	layer     int
	delta, ba float64
	modules   int
}

// meansByLayer averages the rows of kind per layer, in layer order.
func meansByLayer(rows []LayerRank, kind Kind) []kindMean {
	acc := map[int]*kindMean{}
	for _, r := range rows {
		if r.Kind != kind {
			continue
		}
		m := acc[r.Layer]
		if m == nil {
			m = &kindMean{layer: r.Layer}
			acc[r.Layer] = m
		}
		m.delta += r.SRDelta
		m.ba += r.SRBA
		m.modules++
	}
	out := make([]kindMean, 0, len(acc))
	for _, m := range acc {
		m.delta /= float64(m.modules)
		m.ba /= float64(m.modules)
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].layer < out[j].layer })
	return out
}

// checkRanks validates rows for plotting: a layer ≥ 0, a known kind and finite ranks.
func checkRanks(rows []LayerRank) error {
	if len(rows) == 0 {
		return fmt.Errorf("stable-rank plot: %w", ErrEmpty)
	}
	for _, r := range rows {
		switch {
		case r.Layer < 0:
			return fmt.Errorf("stable-rank plot: %w: module %q has no layer index", ErrInput, r.Module)
		case r.Kind != Attn && r.Kind != MLP:
			return fmt.Errorf("stable-rank plot: %w: module %q has kind %q, want attn or mlp", ErrInput, r.Module, r.Kind)
		}
		if err := finite(fmt.Sprintf("stable rank of module %q (ΔW %v, BA %v)", r.Module, r.SRDelta, r.SRBA),
			r.SRDelta, r.SRBA); err != nil {
			return fmt.Errorf("stable-rank plot: %w", err)
		}
	}
	return nil
}

// PlotStableRank draws the per-layer stable rank of ΔW by depth: one solid line for the
// attention modules and one for the MLP modules (each point the mean over that layer's
// modules of the kind), next to dashed lines of the same colours for B·A, the update
// plain LoRA makes with the same factors. The file's extension picks the format (.png,
// .svg, .pdf). A NaN or infinite rank, or a module without a layer index, is an error
// naming the module.
func PlotStableRank(path string, rows []LayerRank, opts ...Option) error {
	if err := checkRanks(rows); err != nil {
		return err
	}
	o := makeOptions("Stable rank of the update by depth", opts)
	p := newFigure(o, "layer", "stable rank ‖X‖²_F / σ²_max")
	for i, kind := range []Kind{Attn, MLP} {
		means := meansByLayer(rows, kind)
		if len(means) == 0 {
			continue
		}
		delta, ba := make(plotter.XYs, len(means)), make(plotter.XYs, len(means))
		for k, m := range means {
			delta[k] = plotter.XY{X: float64(m.layer), Y: m.delta}
			ba[k] = plotter.XY{X: float64(m.layer), Y: m.ba}
		}
		if err := p.addLine(fmt.Sprintf("%s ΔW", kind), delta, i, false, true); err != nil {
			return err
		}
		if err := p.addLine(fmt.Sprintf("%s B·A", kind), ba, i, true, true); err != nil {
			return err
		}
	}
	p.Y.Min = 0
	p.X.Min, p.X.Max = p.X.Min-0.25, p.X.Max+0.25 // keep end points off the frame
	p.X.Tick.Marker = integerTicks{}
	return p.save(path)
}
