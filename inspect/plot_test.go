package inspect

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlotStableRank(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stable_rank.png")
	if err := PlotStableRank(path, sampleRanks(t)); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, path)
	// Series 0 (attn) and 1 (mlp) are drawn.
	for i := 0; i < 2; i++ {
		if n := colourPixels(img, i); n < 200 {
			t.Errorf("series %d has %d pixels of its colour, want a line", i, n)
		}
	}
	noTempFiles(t, dir)

	// The SVG of the same data names the four series and the layers on the axis.
	svg := filepath.Join(dir, "stable_rank.svg")
	if err := PlotStableRank(svg, sampleRanks(t), WithTitle("my run")); err != nil {
		t.Fatal(err)
	}
	text := readText(t, svg)
	for _, want := range []string{"attn ΔW", "attn B·A", "mlp ΔW", "mlp B·A", "my run", ">layer<"} {
		if !strings.Contains(text, want) {
			t.Errorf("the SVG does not contain %q", want)
		}
	}
}

func TestPlotStableRankRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sr.png")
	rows := sampleRanks(t)
	rows[5].SRDelta = math.NaN()
	err := PlotStableRank(path, rows)
	if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), rows[5].Module) {
		t.Errorf("NaN rank: %v, want ErrNotFinite naming %s", err, rows[5].Module)
	}
	if _, statErr := os.Stat(path); statErr == nil {
		t.Error("a failed plot left a file")
	}
	if err := PlotStableRank(path, nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("no rows: %v", err)
	}
	if err := PlotStableRank(path, []LayerRank{{Module: "mlp.up_proj", Layer: -1, Kind: MLP, SRDelta: 1, SRBA: 1}}); !errors.Is(err, ErrInput) {
		t.Errorf("no layer index: %v", err)
	}
	if err := PlotStableRank(filepath.Join(dir, "sr.bmp"), sampleRanks(t)); !errors.Is(err, ErrInput) {
		t.Errorf("unknown format: %v", err)
	}
	noTempFiles(t, dir)
}

// phiSamples samples a smooth φ and the identity on [−L−1, L+1].
func phiSamples(name string, L float64, f func(float64) float64) Curve {
	c := Curve{Name: name}
	for i := 0; i <= 200; i++ {
		x := -L - 1 + (2*L+2)*float64(i)/200
		c.X, c.Y = append(c.X, x), append(c.Y, f(x))
	}
	return c
}

func TestPlotPhi(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "phi.png")
	curves := []Curve{
		phiSamples("layer 0 q_proj", 3, func(x float64) float64 { return 0.4 * math.Sin(2*x) }),
		phiSamples("layer 11 down_proj", 3, func(x float64) float64 { return 0.2*x + 0.3*math.Exp(-x*x) }),
	}
	if err := PlotPhi(path, 3, curves); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, path)
	for i := range curves {
		if n := colourPixels(img, i); n < 200 {
			t.Errorf("curve %d has %d pixels of its colour", i, n)
		}
	}
	svg := filepath.Join(dir, "phi.svg")
	if err := PlotPhi(svg, 3, curves); err != nil {
		t.Fatal(err)
	}
	text := readText(t, svg)
	for _, want := range []string{"layer 0 q_proj", "layer 11 down_proj", "identity (LoRA)", ">-4<", ">4<"} {
		if !strings.Contains(text, want) {
			t.Errorf("the φ SVG does not contain %q", want)
		}
	}

	bad := phiSamples("broken", 3, math.Log) // log of negative x: NaN
	err := PlotPhi(path, 3, []Curve{bad})
	if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), `curve "broken" at point 0`) {
		t.Errorf("NaN curve: %v", err)
	}
	if err := PlotPhi(path, 0, curves); !errors.Is(err, ErrInput) {
		t.Errorf("L = 0: %v", err)
	}
	if err := PlotPhi(path, 3, []Curve{{Name: "x", X: []float64{1, 2}, Y: []float64{1}}}); !errors.Is(err, ErrInput) {
		t.Errorf("unequal lengths: %v", err)
	}
	if err := PlotPhi(path, 3, nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("no curves: %v", err)
	}
}

func TestPlotSpectra(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spectra.png")
	// ΔW: a slowly decaying spectrum; B·A: rank 4, the rest numerically zero.
	var spectra []Spectrum
	for l, name := range []string{"layer 2 q_proj", "layer 9 up_proj"} {
		s := Spectrum{Name: name}
		for i := 0; i < 32; i++ {
			s.Delta = append(s.Delta, float64(l+1)*math.Pow(0.8, float64(i)))
			ba := 0.0
			if i < 4 {
				ba = float64(l+1) * math.Pow(0.5, float64(i))
			} else if i < 8 {
				ba = 1e-17 // SVD noise
			}
			s.BA = append(s.BA, ba)
		}
		spectra = append(spectra, s)
	}
	// Unsorted input is fine.
	spectra[0].Delta[0], spectra[0].Delta[5] = spectra[0].Delta[5], spectra[0].Delta[0]
	if err := PlotSpectra(path, spectra); err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, path)
	for i := range spectra {
		if n := colourPixels(img, i); n < 100 {
			t.Errorf("spectrum %d has %d pixels of its colour", i, n)
		}
	}
	pts, err := spectrumPoints("x", spectra[1].BA)
	if err != nil || len(pts) != 4 || pts[0].Y != 2 || pts[3].Y != 0.25 {
		t.Errorf("B·A points %v, %v; want the 4 non-zero values, descending", pts, err)
	}

	neg := []Spectrum{{Name: "n", Delta: []float64{1, -0.5}, BA: []float64{1}}}
	if err := PlotSpectra(path, neg); !errors.Is(err, ErrInput) {
		t.Errorf("negative singular value: %v", err)
	}
	nan := []Spectrum{{Name: "layer 3", Delta: []float64{1, 0.5}, BA: []float64{math.NaN()}}}
	if err := PlotSpectra(path, nan); !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), `layer "layer 3": B·A`) {
		t.Errorf("NaN singular value: %v", err)
	}
	zero := []Spectrum{{Name: "z", Delta: []float64{0, 0}, BA: []float64{1}}}
	if err := PlotSpectra(path, zero); !errors.Is(err, ErrEmpty) {
		t.Errorf("all-zero spectrum: %v", err)
	}
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
