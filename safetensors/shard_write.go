package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
)

var shardNameRE = regexp.MustCompile(`^model-\d{5}-of-\d{5}\.safetensors$`)

// ShardName returns the transformers name of shard i (1-based) of n.
func ShardName(i, n int) string { return fmt.Sprintf("model-%05d-of-%05d.safetensors", i, n) }

// WriteSharded writes tensors into dir the way transformers' save_pretrained does. Tensors
// are taken in the given order and a new shard starts when the next tensor would push the
// current one past maxShardBytes (a tensor larger than that gets a shard of its own).
// One shard is written as model.safetensors; several as model-0000i-of-0000N.safetensors
// plus model.safetensors.index.json ({"metadata": {"total_size": ...}, "weight_map": ...}).
// metadata goes into every shard's header. Each file is written atomically, the index
// last; afterwards weight files of an earlier save that the new layout does not use (other
// shard counts, a single file, a stale index) are removed so that loaders cannot pick them.
func WriteSharded(dir string, tensors []Tensor, maxShardBytes int64, metadata map[string]string) error {
	if maxShardBytes <= 0 {
		return fmt.Errorf("safetensors: write %s: maxShardBytes must be positive, got %d", dir, maxShardBytes)
	}
	if _, err := prepare(tensors, metadata); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", dir, err)
	}
	var groups [][]Tensor
	var size int64
	for _, t := range tensors {
		n := t.byteLen()
		if len(groups) == 0 || (size+n > maxShardBytes && len(groups[len(groups)-1]) > 0) {
			groups = append(groups, nil)
			size = 0
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], t)
		size += n
	}
	if len(groups) == 0 {
		groups = [][]Tensor{nil}
	}
	if len(groups) == 1 {
		if err := Write(filepath.Join(dir, SingleFileName), groups[0], metadata); err != nil {
			return err
		}
		return removeStale(dir, map[string]bool{SingleFileName: true})
	}
	keep := map[string]bool{IndexFileName: true}
	weightMap := map[string]string{}
	var total int64
	for i, g := range groups {
		name := ShardName(i+1, len(groups))
		keep[name] = true
		for _, t := range g {
			weightMap[t.Name] = name
			total += t.byteLen()
		}
		if err := Write(filepath.Join(dir, name), g, metadata); err != nil {
			return err
		}
	}
	idx, err := json.MarshalIndent(map[string]any{
		"metadata":   map[string]any{"total_size": total},
		"weight_map": weightMap,
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("safetensors: write %s: %w", dir, err)
	}
	err = writeAtomic(filepath.Join(dir, IndexFileName), func(w io.Writer) error {
		_, err := w.Write(append(idx, '\n'))
		return err
	})
	if err != nil {
		return err
	}
	return removeStale(dir, keep)
}

// removeStale deletes model weight files in dir that are not in keep.
func removeStale(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("safetensors: clean %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		n := e.Name()
		stale := n == SingleFileName || n == IndexFileName || shardNameRE.MatchString(n)
		if stale && !keep[n] {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				errs = append(errs, fmt.Errorf("safetensors: remove stale %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
