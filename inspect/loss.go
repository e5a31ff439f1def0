package inspect

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"gonum.org/v1/plot/plotter"
)

// Point is one logged value at an optimizer step.
type Point struct {
	Step  float64
	Value float64
}

// LossCurve is one run's training and evaluation losses.
type LossCurve struct {
	Name        string
	Train, Eval []Point
}

// nonFinite matches the bare NaN and Infinity tokens Python's json module writes (and
// JSON does not allow), so that they can be reported instead of failing as syntax.
var nonFinite = regexp.MustCompile(`("\s*:\s*)(NaN|-?Infinity)\b`)

// ReadLossCurve reads a metrics JSONL file, one JSON object per line such as
// {"step":1,"loss":2.3} or {"step":20,"loss":1.9,"eval_loss":2.0}: "loss" goes to Train and
// "eval_loss" to Eval at "step". Other keys are ignored, as are lines with neither loss,
// null values and blank lines. A line that is not a JSON object, a loss without a numeric
// step, or a non-numeric loss is ErrMetrics naming the line; a NaN or infinite loss (as
// Python writes them) is ErrNotFinite naming the line. The curve's Name is the file's base
// name without ".jsonl" and ".metrics".
func ReadLossCurve(path string) (LossCurve, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return LossCurve{}, fmt.Errorf("inspect: %w", err)
	}
	name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".jsonl"), ".metrics")
	c := LossCurve{Name: name}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		text = nonFinite.ReplaceAll(text, []byte(`$1"$2"`))
		var rec map[string]any
		if err := json.Unmarshal(text, &rec); err != nil {
			return LossCurve{}, fmt.Errorf("%w: %s:%d: %v", ErrMetrics, path, line, err)
		}
		at := func(format string, args ...any) string {
			return fmt.Sprintf("%s:%d: ", path, line) + fmt.Sprintf(format, args...)
		}
		var step float64
		haveStep := false
		for _, key := range []string{"loss", "eval_loss"} {
			v, ok := rec[key]
			if !ok || v == nil {
				continue
			}
			if !haveStep {
				s, ok := rec["step"].(float64)
				if !ok {
					return LossCurve{}, fmt.Errorf("%w: %s", ErrMetrics, at("%s without a numeric step", key))
				}
				step, haveStep = s, true
			}
			val, err := lossValue(v)
			if err != nil {
				return LossCurve{}, fmt.Errorf("%w: %s", err, at("%s is %v", key, v))
			}
			if key == "loss" {
				c.Train = append(c.Train, Point{step, val})
			} else {
				c.Eval = append(c.Eval, Point{step, val})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return LossCurve{}, fmt.Errorf("%w: %s: %v", ErrMetrics, path, err)
	}
	return c, nil
}

func lossValue(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case string:
		if x == "NaN" || x == "Infinity" || x == "-Infinity" {
			return 0, ErrNotFinite
		}
	}
	return 0, ErrMetrics
}

// PlotLoss draws the loss curves of one or more runs: training loss solid, evaluation loss
// dashed with markers, one colour per run. A NaN or infinite loss is ErrNotFinite naming
// the run and the step; runs without any point are ErrEmpty.
func PlotLoss(path string, curves []LossCurve, opts ...Option) error {
	total := 0
	for _, c := range curves {
		total += len(c.Train) + len(c.Eval)
	}
	if total == 0 {
		return fmt.Errorf("loss plot: %w", ErrEmpty)
	}
	o := makeOptions("Loss", opts)
	p := newFigure(o, "step", "loss")
	for i, c := range curves {
		for _, series := range []struct {
			what   string
			points []Point
			dashed bool
		}{{"train", c.Train, false}, {"eval", c.Eval, true}} {
			if len(series.points) == 0 {
				continue
			}
			xys := make(plotter.XYs, len(series.points))
			for k, pt := range series.points {
				if err := finite(fmt.Sprintf("run %q: %s loss at step %v", c.Name, series.what, pt.Step), pt.Step, pt.Value); err != nil {
					return fmt.Errorf("loss plot: %w", err)
				}
				xys[k] = plotter.XY{X: pt.Step, Y: pt.Value}
			}
			name := series.what
			if c.Name != "" {
				name = c.Name + " " + series.what
			}
			marks := series.dashed || len(xys) == 1
			if err := p.addLine(name, xys, i, series.dashed, marks); err != nil {
				return err
			}
		}
	}
	return p.save(path)
}
