package inspect

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/plotutil"
)

// decodePNG opens path and decodes it as PNG, checking the default size.
func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != 672 || b.Dy() != 432 {
		t.Errorf("%s is %d×%d, want 672×432 (7×4.5 in at 96 dpi)", path, b.Dx(), b.Dy())
	}
	return img
}

// colourPixels counts the pixels within a small distance of series i's colour, to see
// that a series was drawn.
func colourPixels(img image.Image, i int) int {
	want := color.RGBAModel.Convert(plotutil.Color(i)).(color.RGBA)
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			d := math.Abs(float64(c.R)-float64(want.R)) + math.Abs(float64(c.G)-float64(want.G)) +
				math.Abs(float64(c.B)-float64(want.B))
			if d < 30 {
				n++
			}
		}
	}
	return n
}

// noTempFiles checks that a plot left nothing but its output in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left behind: %s", filepath.Join(dir, e.Name()))
		}
	}
}

// sampleRanks is a 4-layer model with q, v (attn) and up, down (mlp) adapters.
func sampleRanks(t *testing.T) []LayerRank {
	t.Helper()
	var rows []LayerRank
	for layer := 0; layer < 4; layer++ {
		for _, m := range []struct {
			leaf      string
			delta, ba float64
		}{
			{"self_attn.q_proj", 2 + 0.5*float64(layer), 1.5},
			{"self_attn.v_proj", 3 + 0.25*float64(layer), 1.8},
			{"mlp.up_proj", 5 - 0.5*float64(layer), 2.0},
			{"mlp.down_proj", 6 - 0.25*float64(layer), 2.2},
		} {
			r, err := NewLayerRank("model.layers."+string(rune('0'+layer))+"."+m.leaf, m.delta, m.ba)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, r)
		}
	}
	return rows
}

func nan() float64 { return math.NaN() }
