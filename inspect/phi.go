package inspect

import (
	"fmt"
	"math"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Curve is one sampled function: Y[i] = f(X[i]), X ascending.
type Curve struct {
	Name string
	X, Y []float64
}

// check validates a curve for plotting.
func (c Curve) check(plot string) error {
	if len(c.X) != len(c.Y) {
		return fmt.Errorf("%s: %w: curve %q has %d x and %d y values", plot, ErrInput, c.Name, len(c.X), len(c.Y))
	}
	if len(c.X) < 2 {
		return fmt.Errorf("%s: %w: curve %q has %d points, need 2", plot, ErrEmpty, c.Name, len(c.X))
	}
	for i := range c.X {
		if err := finite(fmt.Sprintf("curve %q at point %d (x %v, y %v)", c.Name, i, c.X[i], c.Y[i]), c.X[i], c.Y[i]); err != nil {
			return fmt.Errorf("%s: %w", plot, err)
		}
	}
	return nil
}

// PlotPhi draws learned transfer functions φ, sampled by the caller (for example with
// lrlora's φ on a grid of x), over x ∈ [−L−1, L+1], with dotted vertical lines at ±L where
// the grid points g_k lie. The identity, φ(x) = x of plain LoRA, is drawn in grey for
// comparison. Points outside the x range are clipped.
func PlotPhi(path string, L float64, curves []Curve, opts ...Option) error {
	if len(curves) == 0 {
		return fmt.Errorf("φ plot: %w", ErrEmpty)
	}
	if !(L > 0) || math.IsInf(L, 0) {
		return fmt.Errorf("φ plot: %w: L = %v, need a finite L > 0", ErrInput, L)
	}
	for _, c := range curves {
		if err := c.check("φ plot"); err != nil {
			return err
		}
	}
	o := makeOptions("Learned transfer functions φ", opts)
	p := newFigure(o, "x (entry of B·A)", "φ(x)")
	lo, hi := -L-1, L+1
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for i, c := range curves {
		xys := make(plotter.XYs, len(c.X))
		for k := range c.X {
			xys[k] = plotter.XY{X: c.X[k], Y: c.Y[k]}
			if c.X[k] >= lo && c.X[k] <= hi {
				ymin, ymax = math.Min(ymin, c.Y[k]), math.Max(ymax, c.Y[k])
			}
		}
		if err := p.addLine(c.Name, xys, i, false, false); err != nil {
			return err
		}
	}
	if ymin > ymax { // no point inside the range
		ymin, ymax = -1, 1
	}
	if ymin == ymax {
		ymin, ymax = ymin-1, ymax+1
	}
	pad := 0.05 * (ymax - ymin)
	ymin, ymax = ymin-pad, ymax+pad
	for _, g := range []float64{-L, L} {
		l, err := plotter.NewLine(plotter.XYs{{X: g, Y: ymin}, {X: g, Y: ymax}})
		if err != nil {
			return fmt.Errorf("φ plot: %w", err)
		}
		l.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		p.Add(l)
		if g > 0 {
			p.legend(fmt.Sprintf("grid range ±%g", L), l)
		}
	}
	id, err := plotter.NewLine(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}})
	if err != nil {
		return fmt.Errorf("φ plot: %w", err)
	}
	id.Color = grey
	p.Add(id)
	p.legend("identity (LoRA)", id)
	// Add widens the axes to every plotter's data; the limits are set last so that the
	// identity line is clipped to the range of the curves.
	p.X.Min, p.X.Max = lo, hi
	p.Y.Min, p.Y.Max = ymin, ymax
	if hi-lo <= 40 {
		p.X.Tick.Marker = integerTicks{}
	}
	return p.save(path)
}
