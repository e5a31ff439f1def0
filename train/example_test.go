package train_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/train"
)

// Run with: go test ./train -run Example
//
// Four optimizer steps of LR-LoRA (r = 4, K = 8, all seven projections of both layers)
// on a random tiny Llama and the synthetic alpaca task, two examples per step,
// checkpointing every two steps; then the final checkpoint is opened.
func Example() {
	dir, err := os.MkdirTemp("", "train-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	modelDir := filepath.Join(dir, "model")
	if _, err := hfinit.Write(modelDir, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1}); err != nil {
		log.Fatal(err)
	}

	o := train.DefaultOptions()
	o.Model.Path = modelDir
	o.Adapter.R, o.Adapter.K = 4, 8
	o.Data.Format = "alpaca_json"
	o.Data.Train = []string{"../data/testdata/alpaca_tiny_train.json"}
	o.Data.MaxLen = 128
	o.Train.MaxSteps, o.Train.MicroBatchSize, o.Train.LR = 4, 2, 1e-2
	o.Checkpoint.Every = 2
	o.Output.Dir = filepath.Join(dir, "run")
	res, err := train.Run(context.Background(), o, train.Env{Console: io.Discard})
	if err != nil {
		log.Fatal(err)
	}

	saved, err := train.OpenCheckpoint(res.Checkpoint)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Reason, "after", res.Step, "steps:", filepath.Base(res.Checkpoint))
	fmt.Println("trainable parameters:", saved.Manifest.TrainableParameters)
	fmt.Println("data position:", saved.State.Cursor.Position, "examples")
	// Output:
	// max_steps after 4 steps: step-000004
	// trainable parameters: 8416
	// data position: 8 examples
}
