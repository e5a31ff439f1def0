package data_test

import (
	"fmt"
	"log"

	"github.com/lrtrain/lrtrain/data"
)

// Run with: go test ./data -run Example
//
// Rank 0 of 2 reads the tiny alpaca task, masks the prompts, packs the examples into
// 512-token sequences and takes its share of the first optimizer step (micro-batch 2,
// 2 accumulation steps); the loss is normalised by the step's global target count.
func Example() {
	ds, err := data.Read(data.ReadConfig{Format: data.AlpacaJSON, Paths: []string{"testdata/alpaca_tiny_train.json"}})
	if err != nil {
		log.Fatal(err)
	}
	builder, err := data.NewBuilder(data.ByteTokenizer{}, data.BuildConfig{MaxLen: 512})
	if err != nil {
		log.Fatal(err)
	}
	examples, built, err := builder.Build(ds.Records)
	if err != nil {
		log.Fatal(err)
	}
	packed, _, err := data.Pack(examples, 512)
	if err != nil {
		log.Fatal(err)
	}
	sampler, err := data.NewSampler(data.SamplerConfig{NumExamples: len(packed), Seed: 1234,
		WorldSize: 2, Rank: 0, MicroBatch: 2, AccumSteps: 2})
	if err != nil {
		log.Fatal(err)
	}
	collator, err := data.NewCollator(data.ByteTokenizer{}, 512)
	if err != nil {
		log.Fatal(err)
	}
	loader, err := data.NewLoader(packed, sampler, collator)
	if err != nil {
		log.Fatal(err)
	}
	step, err := loader.Next()
	if err != nil {
		log.Fatal(err)
	}

	fmt.Println(ds.Summary)
	fmt.Printf("%d examples, %d target tokens, packed into %d sequences\n", built.Examples, built.TargetTokens, len(packed))
	fmt.Printf("%d sequences per step, %d steps per epoch\n", sampler.GlobalBatchSize(), sampler.StepsPerEpoch())
	for i, b := range step.Batches {
		fmt.Printf("micro-batch %d: %dx%d, %d target tokens\n", i, b.Size, b.SeqLen, b.TargetTokens)
	}
	fmt.Printf("global target tokens %d; next position %d\n", step.GlobalTargetTokens, sampler.Cursor().Position)
	// Output:
	// 200 records from 1 file
	// 200 examples, 802 target tokens, packed into 100 sequences
	// 8 sequences per step, 13 steps per epoch
	// micro-batch 0: 2x512, 18 target tokens
	// micro-batch 1: 2x512, 16 target tokens
	// global target tokens 61; next position 8
}
