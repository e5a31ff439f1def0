package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lrtrain/lrtrain/model/hfinit"
)

func newInitModelCmd() *cobra.Command {
	var o hfinit.Options
	var out string
	cmd := &cobra.Command{
		Use:   "init-model",
		Short: "Write a randomly initialised model in the Hugging Face layout",
		Long: `init-model writes a model directory that transformers (and lrtrain) can load:
config.json as transformers writes it for the architecture, model.safetensors with
weights drawn as transformers' _init_weights does, and a small byte-level BPE
tokenizer (tokenizer.json, tokenizer_config.json, special_tokens_map.json) learned
from a built-in corpus. Presets: tiny (tests), small (CPU measurements) and
qwen2-0.5b (the real shapes of Qwen2-0.5B, --arch qwen2 only).`,
		Example: `  lrtrain init-model --arch llama --preset tiny --out /tmp/tiny-llama
  lrtrain init-model --arch qwen2 --preset qwen2-0.5b --dtype bfloat16 --out /tmp/qwen2-0.5b
  lrtrain init-model --arch roberta --preset small --num-labels 1 --out /tmp/roberta-stsb`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{fmt.Errorf("--out is required")}
			}
			cfg, err := hfinit.Write(out, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s, %s preset: hidden %d, %d layers, vocab %d)\n",
				out, cfg.Architectures[0], o.Preset, cfg.HiddenSize, cfg.NumHiddenLayers, cfg.VocabSize)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Arch, "arch", "llama", "architecture: "+strings.Join(hfinit.ArchNames(), ", "))
	f.StringVar(&o.Preset, "preset", "tiny", "size: "+strings.Join(hfinit.Presets, ", "))
	f.StringVar(&out, "out", "", "output directory (created if needed)")
	f.Uint64Var(&o.Seed, "seed", 0, "seed for the weights")
	f.StringVar(&o.DType, "dtype", "float32", "dtype of the weights on disk: float32 or bfloat16")
	f.IntVar(&o.NumLabels, "num-labels", 0, "labels of a classifier (roberta, bert); 1 is regression; 0: 2")
	return cmd
}
