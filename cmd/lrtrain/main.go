// Command lrtrain fine-tunes pretrained transformers with LR-LoRA.
//
//	lrtrain demo                 # a few LR-LoRA steps on a synthetic layer task
//	lrtrain env                  # libtorch, threads, BLAS, GPUs
//	lrtrain version
package main

import (
	"errors"
	"fmt"
	"os"
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

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCmd()
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
