package safetensors_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/lrtrain/lrtrain/safetensors"
)

// Run with: go test ./safetensors -run Example
func Example() {
	dir, err := os.MkdirTemp("", "safetensors-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	weights := []float32{0.5, -1.25, 3, 1e-7}
	data, err := safetensors.EncodeFloat32s(safetensors.BF16, weights)
	if err != nil {
		log.Fatal(err)
	}
	path := filepath.Join(dir, "adapter.safetensors")
	err = safetensors.Write(path, []safetensors.Tensor{
		{Name: "layers.0.lora_A", DType: safetensors.BF16, Shape: []int64{2, 2}, Data: data},
	}, map[string]string{"format": "pt"})
	if err != nil {
		log.Fatal(err)
	}

	f, err := safetensors.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	info, _ := f.Info("layers.0.lora_A")
	values, err := f.Float32s("layers.0.lora_A")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(f.Names(), info.DType, info.Shape, f.Metadata()["format"])
	fmt.Println(values) // 1e-7 is rounded to the nearest bfloat16
	// Output:
	// [layers.0.lora_A] BF16 [2 2] pt
	// [0.5 -1.25 3 1.0011718e-07]
}

// A model split into shards reads like one file.
func ExampleOpenIndex() {
	dir, err := os.MkdirTemp("", "safetensors-sharded")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	var tensors []safetensors.Tensor
	for _, name := range []string{"embed", "layer.0", "layer.1"} {
		tensors = append(tensors, safetensors.Tensor{Name: name, DType: safetensors.U8, Shape: []int64{64}, Data: make([]byte, 64)})
	}
	if err := safetensors.WriteSharded(dir, tensors, 100, nil); err != nil {
		log.Fatal(err)
	}
	model, err := safetensors.OpenIndex(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer model.Close()
	for _, name := range model.Names() {
		shard, _ := model.Shard(name)
		fmt.Println(name, "->", shard)
	}
	// Output:
	// embed -> model-00001-of-00003.safetensors
	// layer.0 -> model-00002-of-00003.safetensors
	// layer.1 -> model-00003-of-00003.safetensors
}
