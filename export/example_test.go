package export_test

import (
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/export"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// Adapt a tiny Llama's attention projections and export the merged model in bfloat16
// with the base model's tokenizer (what `lrtrain export --dtype bfloat16` does after
// loading a checkpoint).
func Example() {
	dir, err := os.MkdirTemp("", "export-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	base := filepath.Join(dir, "base")
	if _, err := hfinit.Write(base, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1}); err != nil {
		log.Fatal(err)
	}
	m, err := model.Load(base)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	spec := adapter.Default() // LR-LoRA, r = 8, K = 50
	spec.TargetModules = adapter.Targets{Names: []string{"q_proj", "v_proj"}}
	if _, err := m.Inject(spec, rand.New(rand.NewPCG(1, 2))); err != nil {
		log.Fatal(err)
	}
	// ... train ...
	res, err := export.Merged(m, filepath.Join(dir, "merged"), export.Options{DType: "bfloat16"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.DType, len(res.Merged), "layers merged")
	fmt.Println(res.Files)
	// Output:
	// bfloat16 4 layers merged
	// [config.json generation_config.json model.safetensors special_tokens_map.json tokenizer.json tokenizer_config.json]
}
