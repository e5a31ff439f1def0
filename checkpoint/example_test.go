package checkpoint_test

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/safetensors"
)

type trainState struct {
	WorldSize  int   `json:"world_size"`
	DataCursor int64 `json:"data_cursor"`
}

// Run with: go test ./checkpoint -run Example
func Example() {
	root, err := os.MkdirTemp("", "checkpoint-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	for step := int64(100); step <= 300; step += 100 {
		adapters := []safetensors.Tensor{{Name: "layers.0.lora_A", DType: safetensors.F32,
			Shape: []int64{1}, Data: []byte{0, 0, 128, 63}}}
		files := []checkpoint.File{{
			Name:  "adapters.safetensors",
			Write: func(w io.Writer) error { return safetensors.Encode(w, adapters, nil) },
		}}
		if _, err := checkpoint.Save(root, step, files, trainState{WorldSize: 2, DataCursor: step * 8}); err != nil {
			log.Fatal(err)
		}
	}

	ckpt, skipped, err := checkpoint.LatestValid(root)
	if err != nil {
		log.Fatal(err)
	}
	var state trainState
	if err := ckpt.DecodeManifest(&state); err != nil {
		log.Fatal(err)
	}
	fmt.Println("resume from", filepath.Base(ckpt.Dir), "step", ckpt.Step, "cursor", state.DataCursor, "skipped", len(skipped))
	fmt.Println("files:", ckpt.Names())

	removed, err := checkpoint.Prune(root, 2)
	if err != nil {
		log.Fatal(err)
	}
	for _, dir := range removed {
		fmt.Println("pruned", filepath.Base(dir))
	}
	// Output:
	// resume from step-000300 step 300 cursor 2400 skipped 0
	// files: [adapters.safetensors]
	// pruned step-000100
}
