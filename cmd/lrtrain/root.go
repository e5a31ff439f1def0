package main

import (
	"io"
	"os"
	"time"

	"github.com/lrtrain/lrtrain/train"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

type globalFlags struct {
	logLevel string
	logJSON  bool
	// onStep is not a flag: a runOption sets it (tests), and the train command's
	// observer calls it after each step it charts.
	onStep func(*observer, train.StepMetrics)
}

// runOption sets what the command line cannot: hooks for tests.
type runOption func(*globalFlags)

// withStepHook makes the train command's observer call f on the training goroutine
// after every step it charts (tests scrape the endpoint there, while the run is live).
func withStepHook(f func(*observer, train.StepMetrics)) runOption {
	return func(g *globalFlags) { g.onStep = f }
}

func newRootCmd(opts ...runOption) *cobra.Command {
	var g globalFlags
	for _, o := range opts {
		o(&g)
	}
	root := &cobra.Command{
		Use:   "lrtrain",
		Short: "Fine-tune transformers with LR-LoRA (learnable-rank LoRA)",
		Long: `lrtrain fine-tunes pretrained transformers with LR-LoRA: low-rank adapters whose
product passes through a learned elementwise transfer function, so the update's
rank is no longer bounded by r.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().BoolVar(&g.logJSON, "log-json", false, "log JSON lines instead of console text")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		lvl, err := zerolog.ParseLevel(g.logLevel)
		if err != nil {
			return usageError{err}
		}
		zerolog.SetGlobalLevel(lvl)
		return nil
	}
	root.AddCommand(newVersionCmd(), newEnvCmd(), newDemoCmd(&g), newLaunchCmd(&g), newInitModelCmd())
	root.AddCommand(newExportCmd(), newEvalCmd(), newInspectCmd())
	root.AddCommand(newTrainCmd(&g))
	return root
}

// newLogger returns the console logger (human-readable on a terminal, JSON lines otherwise or with --log-json).
func newLogger(w io.Writer, g *globalFlags) zerolog.Logger {
	if !g.logJSON {
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			w = zerolog.ConsoleWriter{Out: f, TimeFormat: time.TimeOnly}
		}
	}
	return zerolog.New(w).With().Timestamp().Logger()
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
