package main

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/param"
)

// spreadInit returns a train.Env.InitAdapters that starts a run from a trained-looking
// adapter instead of B = 0: every lora_B entry drawn from N(0, sigma²) and every φ
// amplitude from N(0, (sigma/2)²), the same draws in every child (a fixed seed, in the
// order of the trainable list). lora_A keeps its Kaiming start. With B ≠ 0, M = B·A
// spreads over a range as it does once fine-tuning is under way, which is what phiop's
// tabulated φ needs (an M within one table interval keeps the K-term kernels).
func spreadInit(sigma float64) func([]param.Tensor) error {
	return func(params []param.Tensor) error {
		rng := rand.New(rand.NewPCG(7, 11))
		for _, p := range params {
			var std float64
			switch {
			case strings.HasSuffix(p.Name, "lora_B"):
				std = sigma
			case strings.HasSuffix(p.Name, "phi.amplitude"):
				std = sigma / 2
			default:
				continue
			}
			if err := fill(p, rng, std); err != nil {
				return fmt.Errorf("stepbench: -spread: %s: %w", p.Name, err)
			}
		}
		return nil
	}
}

// fill overwrites p's values with normal draws of standard deviation std.
func fill(p param.Tensor, rng *rand.Rand, std float64) error {
	dev, err := p.Tensor.Device()
	if err != nil {
		return err
	}
	if p.Tensor.DType() != gotch.Float || dev.IsCuda() {
		return fmt.Errorf("needs a float32 CPU tensor, got %v on %v", p.Tensor.DType(), dev)
	}
	return tensorkit.FillNormal(p.Tensor, rng, std)
}
