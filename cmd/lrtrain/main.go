// Command lrtrain fine-tunes pretrained transformers with LR-LoRA (docs/method.md).
//
//	lrtrain train --config cfg.yaml            # train as the YAML says (one process)
//	lrtrain launch --standalone --nproc-per-node 2 -- train --config cfg.yaml
//	                                           # torchrun-style node agent: rendezvous, workers, restarts
//	lrtrain eval --run runs/x --data f --task lm
//	                                           # perplexity, accuracy/F1/MCC, correlations, generation
//	lrtrain export --run runs/x --out merged   # merged Hugging Face model (or --adapter-only)
//	lrtrain inspect --run runs/x --out plots   # per-layer stable rank, φ curves, spectra, loss curve
//	lrtrain init-model --arch llama --preset tiny --out m
//	                                           # a random model in the Hugging Face layout
//	lrtrain demo                               # one layer: lora vs sinelora vs lrlora
//	lrtrain env                                # libtorch, threads, BLAS, GPUs
//	lrtrain version
//
// Every command has --help with examples.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/lrtrain/lrtrain/train"
)

// Exit codes scripts can rely on.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // bad flags or arguments
)

// usageError marks errors caused by how the command was called.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// computes names the commands that run libtorch work (see main).
var computes = map[string]bool{"train": true, "launch": true, "eval": true, "export": true, "inspect": true, "demo": true}

func main() {
	// libgomp's and OpenBLAS's idle threads must sleep, not spin, beside each other (train.ThreadEnv):
	// the commands that compute (and launch, whose workers inherit it) re-execute once.
	if len(os.Args) > 1 && computes[os.Args[1]] {
		if err := train.ExecWithThreadEnv(); err != nil {
			fmt.Fprintln(os.Stderr, "lrtrain: warning:", err)
		}
	}
	os.Exit(run(os.Args[1:]))
}

// run runs the command line args; opts inject what no flag sets (tests' hooks).
func run(args []string, opts ...runOption) int {
	root := newRootCmd(opts...)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "lrtrain:", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitError
}
