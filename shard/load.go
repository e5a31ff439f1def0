package shard

import (
	"context"
	"fmt"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Load loads the Hugging Face model in dir (see model.Load; opts are passed on) with
// its frozen weights sharded across the ranks of pg: the model binds placeholders,
// and this rank reads only its own part of each unit from the memory-mapped
// checkpoint. Every rank of pg must call Load with the same directory and options.
// Close the model, then the Gatherer.
func Load(ctx context.Context, pg collective.ProcessGroup, dir string, opts ...model.Option) (*model.Model, *Gatherer, error) {
	g := NewGatherer(ctx, pg)
	m, err := model.Load(dir, append(opts, model.WithBlockHook(g))...)
	if err != nil {
		g.Close()
		return nil, nil, err
	}
	src, err := safetensors.OpenIndex(dir)
	if err != nil {
		m.Close()
		g.Close()
		return nil, nil, fmt.Errorf("shard: load %s: %w", dir, err)
	}
	// The shards are copies: the mapping can go.
	defer src.Close()
	if err := g.Bind(m, src); err != nil {
		m.Close()
		g.Close()
		return nil, nil, fmt.Errorf("shard: load %s: %w", dir, err)
	}
	return m, g, nil
}
