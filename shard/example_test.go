package shard_test

import (
	"fmt"
	"log"
	"os"

	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/shard"
)

// Plan the frozen weights of the tiny Llama preset (`lrtrain init-model --arch llama
// --preset tiny`) for a shard group of two ranks, in float32.
func ExamplePlan_Describe() {
	dir, err := os.MkdirTemp("", "tiny-llama")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	cfg, err := hfinit.Write(dir, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1})
	if err != nil {
		log.Fatal(err)
	}
	tensors, err := shard.FrozenTensors(cfg)
	if err != nil {
		log.Fatal(err)
	}
	plan, err := shard.NewPlan(tensors, 2, shard.Options{ElemSize: 4})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan.Describe())
	// Output:
	// shard plan: 4 units, 2 ranks, 4-byte elements, tensors aligned to 64 bytes
	//         unit  tensors  elements  padding  per rank
	//   embeddings        1     32768        0     16384
	//      block 0        9     36992        0     18496
	//      block 1        9     36992        0     18496
	//         head        2     32832        0     16416
	//        total             139584        0     69792
	// where the slices of ranks 1.. start:
	//   embeddings: rank 1 at embed_tokens.weight[16384]
	//   block 0: rank 1 at mlp.gate_proj.weight[6080]
	//   block 1: rank 1 at mlp.gate_proj.weight[6080]
	//   head: rank 1 at lm_head.weight[16352]
	// per rank 279168 bytes = 50.0% of 558336; largest gathered unit 147968 bytes
}
