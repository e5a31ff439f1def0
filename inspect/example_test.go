package inspect_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/lrtrain/lrtrain/inspect"
)

func Example() {
	var rows []inspect.LayerRank
	for _, m := range []struct {
		name    string
		srDelta float64
		srBA    float64
	}{
		{"model.layers.0.self_attn.q_proj", 3.1, 1.6},
		{"model.layers.0.mlp.down_proj", 5.2, 2.0},
		{"model.layers.1.self_attn.q_proj", 3.5, 1.7},
		{"model.layers.1.mlp.down_proj", 4.8, 2.1},
	} {
		r, err := inspect.NewLayerRank(m.name, m.srDelta, m.srBA)
		if err != nil {
			panic(err)
		}
		rows = append(rows, r)
	}
	if err := inspect.WriteStableRankTable(os.Stdout, rows, inspect.Markdown); err != nil {
		panic(err)
	}

	dir, err := os.MkdirTemp("", "inspect-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	err = inspect.PlotStableRank(filepath.Join(dir, "stable_rank.png"), rows, inspect.WithTitle("tiny run"))
	fmt.Println("plot written:", err == nil)
	// Output:
	// | layer | kind | module | sr(ΔW) | sr(B·A) | ΔW/B·A |
	// |---:|---|---|---:|---:|---:|
	// | 0 | attn | model.layers.0.self_attn.q_proj | 3.100 | 1.600 | 1.938 |
	// | 0 | mlp | model.layers.0.mlp.down_proj | 5.200 | 2.000 | 2.600 |
	// | 1 | attn | model.layers.1.self_attn.q_proj | 3.500 | 1.700 | 2.059 |
	// | 1 | mlp | model.layers.1.mlp.down_proj | 4.800 | 2.100 | 2.286 |
	// | mean | attn | 2 modules | 3.300 | 1.650 | 2.000 |
	// | mean | mlp | 2 modules | 5.000 | 2.050 | 2.439 |
	// | mean | all | 4 modules | 4.150 | 1.850 | 2.243 |
	// plot written: true
}
