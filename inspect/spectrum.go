package inspect

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

var grey = color.Gray{Y: 150}

// Spectrum holds the singular values of one layer's ΔW and of its B·A, in any order.
type Spectrum struct {
	Name      string
	Delta, BA []float64
}

// zeroFloor is the relative size below which a singular value is numerically zero.
// Adapters train in float32, whose rounding leaves singular values of ~1e-7·σ_max
// where the exact matrix has none (B·A beyond rank r): those are noise, would
// stretch the log axis over 10+ decades, and are left out.
const zeroFloor = 1e-6

// spectrumPoints sorts the values descending and returns (index, σ) for σ > zeroFloor·σ_max.
func spectrumPoints(what string, sv []float64) (plotter.XYs, error) {
	vals := append([]float64(nil), sv...)
	for i, v := range vals {
		if err := finite(fmt.Sprintf("%s singular value %d", what, i), v); err != nil {
			return nil, err
		}
		if v < 0 {
			return nil, fmt.Errorf("%w: %s singular value %d is negative (%v)", ErrInput, what, i, v)
		}
	}
	sortDesc(vals)
	var xys plotter.XYs
	for i, v := range vals {
		if v > zeroFloor*vals[0] && v > 0 {
			xys = append(xys, plotter.XY{X: float64(i + 1), Y: v})
		}
	}
	if len(xys) == 0 {
		return nil, fmt.Errorf("%w: %s has no non-zero singular value", ErrEmpty, what)
	}
	return xys, nil
}

func sortDesc(v []float64) { sort.Sort(sort.Reverse(sort.Float64Slice(v))) }

// PlotSpectra draws, on a log scale, the singular values σ_1 ≥ σ_2 ≥ … of ΔW (solid) and
// of B·A (dashed, same colour) for each given layer. B·A has at most r non-zero values
// while ΔW = s·φ(B·A) need not: the plot shows how much rank φ adds. Values below
// 10⁻¹²·σ_max are numerically zero and left out; NaN, infinite or negative values are
// errors naming the layer.
func PlotSpectra(path string, spectra []Spectrum, opts ...Option) error {
	if len(spectra) == 0 {
		return fmt.Errorf("spectrum plot: %w", ErrEmpty)
	}
	o := makeOptions("Singular values of ΔW and B·A", opts)
	p := newFigure(o, "index i", "singular value σ_i")
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	for i, s := range spectra {
		delta, err := spectrumPoints(fmt.Sprintf("layer %q: ΔW", s.Name), s.Delta)
		if err != nil {
			return fmt.Errorf("spectrum plot: %w", err)
		}
		ba, err := spectrumPoints(fmt.Sprintf("layer %q: B·A", s.Name), s.BA)
		if err != nil {
			return fmt.Errorf("spectrum plot: %w", err)
		}
		if err := p.addLine(s.Name+" ΔW", delta, i, false, len(delta) <= 64); err != nil {
			return err
		}
		if err := p.addLine(s.Name+" B·A", ba, i, true, true); err != nil {
			return err
		}
	}
	p.X.Min = 0
	p.X.Max = math.Max(p.X.Max, 1)
	return p.save(path)
}
