package shard

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/lrtrain/lrtrain/model"
)

// UnitOf's answers besides a block index.
const (
	// Embeddings is the unit of the embedding tables (and their norm): BlockHook's −1.
	Embeddings = -1
	// Head is what UnitOf says of the final norm, the LM head and anything else after
	// the blocks; the plan numbers the head's unit Plan.Blocks, as BlockHook does.
	Head = -2
)

// layerIndex finds the block index in a Hugging Face name: model.layers.3.,
// roberta.encoder.layer.3., transformer.h.3., gpt_neox.layers.3., …
var layerIndex = regexp.MustCompile(`(?:^|\.)(?:layers|layer|h|blocks|block)\.(\d+)\.`)

// UnitOf says which piece of a pass uses the tensor called name: its block index,
// Embeddings for embedding tables and the norm applied to them (a name with a
// component that starts with "embed", or wte/wpe), or Head for everything else (the
// final norm, lm_head, a pooler).
func UnitOf(name string) int {
	if m := layerIndex.FindStringSubmatch(name); m != nil {
		if i, err := strconv.Atoi(m[1]); err == nil {
			return i
		}
	}
	for _, part := range strings.Split(name, ".") {
		if strings.HasPrefix(part, "embed") || part == "wte" || part == "wpe" {
			return Embeddings
		}
	}
	return Head
}

// FrozenTensors lists the frozen tensors of the checkpoint cfg describes, in binding
// order (model.Layout without the trainable classification heads): what a Plan for
// that model covers.
func FrozenTensors(cfg *model.Config) ([]Tensor, error) {
	specs, err := model.Layout(cfg)
	if err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	var out []Tensor
	for _, s := range specs {
		if !s.Head {
			out = append(out, Tensor{Name: s.Name, Shape: s.Shape})
		}
	}
	return out, nil
}
