package model_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// Write a tiny random Llama (what `lrtrain init-model --arch llama --preset tiny` does),
// load it and run a batch of two sequences of four tokens, the second one padded.
func Example() {
	dir, err := os.MkdirTemp("", "tiny-llama")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dir = filepath.Join(dir, "model")
	if _, err := hfinit.Write(dir, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1}); err != nil {
		log.Fatal(err)
	}

	m, err := model.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	ids, _ := model.Int64Tensor([]int64{1, 72, 101, 108, 1, 72, 2, 2}, 2, 4)
	mask, _ := model.Int64Tensor([]int64{1, 1, 1, 1, 1, 1, 0, 0}, 2, 4)
	defer ids.Drop()
	defer mask.Drop()
	logits, err := m.Forward(model.Inputs{InputIDs: ids, AttentionMask: mask})
	if err != nil {
		log.Fatal(err)
	}
	defer logits.Drop()
	shape, _ := logits.Size()
	fmt.Println(m.Architecture().Name, "logits", shape)
	// Output: LlamaForCausalLM logits [2 4 512]
}
