package inspect

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeMetrics(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadLossCurve(t *testing.T) {
	dir := t.TempDir()
	path := writeMetrics(t, dir, "lrlora.metrics.jsonl", `{"step":1,"loss":2.5,"lr":0.0001}
{"step":2,"loss":2.25}

{"event":"checkpoint","step":2}
{"step":3,"loss":2.0,"eval_loss":2.1}
{"step":4,"loss":1.75,"eval_loss":null}
{"step":5,"eval_loss":1.9}
`)
	c, err := ReadLossCurve(path)
	if err != nil {
		t.Fatal(err)
	}
	want := LossCurve{
		Name:  "lrlora",
		Train: []Point{{1, 2.5}, {2, 2.25}, {3, 2}, {4, 1.75}},
		Eval:  []Point{{3, 2.1}, {5, 1.9}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("ReadLossCurve = %+v, want %+v", c, want)
	}
	png := filepath.Join(dir, "loss.png")
	if err := PlotLoss(png, []LossCurve{c}); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, png)
	if n := colourPixels(img, 0); n < 100 {
		t.Errorf("loss curve has %d pixels of its colour", n)
	}
	svg := filepath.Join(dir, "loss.svg")
	if err := PlotLoss(svg, []LossCurve{c, {Name: "lora", Train: []Point{{1, 3}, {5, 2}}}}); err != nil {
		t.Fatal(err)
	}
	text := readText(t, svg)
	for _, s := range []string{">lrlora train<", ">lrlora eval<", ">lora train<", ">step<"} {
		if !strings.Contains(text, s) {
			t.Errorf("loss SVG lacks %q", s)
		}
	}
	if strings.Contains(text, ">lora eval<") {
		t.Error("a run without eval points has an eval legend entry")
	}
}

func TestReadLossCurveErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		content string
		is      error
		want    string
	}{
		{"{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":NaN}\n", ErrNotFinite, "bad.jsonl:2: loss is NaN"},
		{"{\"step\":1,\"eval_loss\":-Infinity}\n", ErrNotFinite, "bad.jsonl:1: eval_loss is -Infinity"},
		{"{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":\n", ErrMetrics, "bad.jsonl:2:"},
		{"{\"loss\":2}\n", ErrMetrics, "bad.jsonl:1: loss without a numeric step"},
		{"{\"step\":\"one\",\"loss\":2}\n", ErrMetrics, "without a numeric step"},
		{"{\"step\":1,\"loss\":\"low\"}\n", ErrMetrics, "bad.jsonl:1: loss is low"},
		{"[1,2]\n", ErrMetrics, "bad.jsonl:1:"},
	}
	for _, c := range cases {
		path := writeMetrics(t, dir, "bad.jsonl", c.content)
		_, err := ReadLossCurve(path)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v\nwant %v containing %q", c.content, err, c.is, c.want)
		}
	}
	if _, err := ReadLossCurve(filepath.Join(dir, "missing.jsonl")); err == nil {
		t.Error("a missing file read without error")
	}
}

func TestPlotLossRejectsNaNAndEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "loss.png")
	c := LossCurve{Name: "run", Train: []Point{{1, 2}, {2, nan()}}}
	err := PlotLoss(path, []LossCurve{c})
	if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), `run "run": train loss at step 2`) {
		t.Errorf("NaN loss: %v", err)
	}
	if err := PlotLoss(path, []LossCurve{{Name: "empty"}}); !errors.Is(err, ErrEmpty) {
		t.Errorf("no points: %v", err)
	}
}
