package inspect

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Default plot size. PNGs are rendered at 96 dpi: 672 × 432 pixels.
const (
	DefaultWidth  = 7 * vg.Inch
	DefaultHeight = 4.5 * vg.Inch
)

// Option adjusts a plot.
type Option func(*options)

type options struct {
	title         string
	width, height vg.Length
}

// WithTitle replaces the plot's default title.
func WithTitle(title string) Option { return func(o *options) { o.title = title } }

// WithSize sets the image size (for PNG, 96 pixels per inch).
func WithSize(width, height vg.Length) Option {
	return func(o *options) { o.width, o.height = width, height }
}

func makeOptions(title string, opts []Option) options {
	o := options{title: title, width: DefaultWidth, height: DefaultHeight}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// figure is a plot being built, with its options and legend size.
type figure struct {
	*plot.Plot
	o       options
	entries int // legend lines
}

// newFigure makes a plot with the title, axis labels, a grid and the legend at the top
// right.
func newFigure(o options, xLabel, yLabel string) *figure {
	p := plot.New()
	p.Title.Text = o.title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return &figure{Plot: p, o: o}
}

func (f *figure) legend(name string, thumbs ...plot.Thumbnailer) {
	f.Legend.Add(name, thumbs...)
	f.entries++
}

// makeRoomForLegend raises the top of the y axis so that the legend, drawn at the top
// right inside the data area, sits above the data instead of on it.
func (f *figure) makeRoomForLegend() {
	if f.entries == 0 || !(f.Y.Max > f.Y.Min) {
		return
	}
	line := f.Legend.TextStyle.Height("Xy") + f.Legend.Padding
	area := f.o.height - 5*f.Title.TextStyle.Height("Xy") // the data area, roughly
	frac := math.Min(0.6, float64(line*vg.Length(f.entries)+line/2)/float64(area))
	if _, log := f.Y.Scale.(plot.LogScale); log && f.Y.Min > 0 {
		lo, hi := math.Log(f.Y.Min), math.Log(f.Y.Max)
		f.Y.Max = math.Exp(lo + (hi-lo)/(1-frac))
		return
	}
	f.Y.Max = f.Y.Min + (f.Y.Max-f.Y.Min)/(1-frac)
}

// save writes the plot to path in the format its extension names (.png, .svg, .pdf, …)
// through a temporary file in the same directory, so that no partial image is left.
func (f *figure) save(path string) error {
	f.makeRoomForLegend()
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
	wt, err := f.WriterTo(f.o.width, f.o.height, format)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInput, path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := wt.WriteTo(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("inspect: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("inspect: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	return nil
}

// addLine adds a line (with point markers when marks) styled by series index i: colour i,
// dashed when dashed.
func (p *figure) addLine(name string, xys plotter.XYs, i int, dashed, marks bool) error {
	line, points, err := plotter.NewLinePoints(xys)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInput, name, err)
	}
	c := plotutil.Color(i)
	line.Color = c
	line.Width = vg.Points(1.5)
	if dashed {
		line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	p.Add(line)
	thumbs := []plot.Thumbnailer{line}
	if marks {
		points.Color = c
		points.Shape = draw.CircleGlyph{}
		points.Radius = vg.Points(2)
		p.Add(points)
		thumbs = append(thumbs, points)
	}
	p.legend(name, thumbs...)
	return nil
}

// finite reports the first NaN or infinity among vals as an ErrNotFinite naming what and
// where.
func finite(what string, vals ...float64) error {
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %s is %v", ErrNotFinite, what, v)
		}
	}
	return nil
}

// integerTicks labels whole numbers only, at a step of 1, 2, 5, 10, 20, … chosen to give
// at most ten labels (layer indices, grid ranges).
type integerTicks struct{}

func (integerTicks) Ticks(lo, hi float64) []plot.Tick {
	step := 1.0
	for _, m := range []float64{2, 2.5, 2} { // 1 → 2 → 5 → 10 → 20 → 50 → …
		if (hi-lo)/step <= 10 {
			break
		}
		step *= m
	}
	for (hi-lo)/step > 10 {
		step *= 10
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		if v == 0 {
			v = 0 // not −0, which would print as "-0"
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f", v)})
	}
	return ticks
}
