package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// File names of a Hugging Face model directory.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Index is one read-only view over the tensors of a model directory, whether they sit in
// one model.safetensors or in shards listed by model.safetensors.index.json.
type Index struct {
	dir     string
	files   map[string]*File  // shard file name -> open shard
	shardOf map[string]string // tensor name -> shard file name
	names   []string
	total   int64
}

type indexJSON struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// OpenIndex opens the model in dir. Like transformers, it uses model.safetensors when that
// file exists and model.safetensors.index.json otherwise. Every shard the index names is
// opened and every tensor is checked to be in the shard the weight map says; errors name
// the missing shard or the misplaced tensor. Tensors a shard holds but the weight map does
// not list are not part of the view.
func OpenIndex(dir string) (*Index, error) {
	single := filepath.Join(dir, SingleFileName)
	if _, err := os.Stat(single); err == nil {
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		x := &Index{dir: dir, files: map[string]*File{SingleFileName: f}, shardOf: map[string]string{}, names: f.Names()}
		for _, n := range x.names {
			x.shardOf[n] = SingleFileName
			x.total += f.hdr.infos[n].ByteSize()
		}
		return x, nil
	}
	indexPath := filepath.Join(dir, IndexFileName)
	raw, err := os.ReadFile(indexPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has neither %s nor %s", ErrNotFound, dir, SingleFileName, IndexFileName)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors: read index: %w", err)
	}
	var ij indexJSON
	if err := json.Unmarshal(raw, &ij); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, indexPath, err)
	}
	if ij.WeightMap == nil {
		return nil, fmt.Errorf("%w: %s: no weight_map", ErrCorrupt, indexPath)
	}
	x := &Index{dir: dir, files: map[string]*File{}, shardOf: ij.WeightMap}
	if err := x.openShards(indexPath); err != nil {
		x.Close()
		return nil, err
	}
	if ts, ok := ij.Metadata["total_size"].(float64); ok {
		x.total = int64(ts)
	}
	return x, nil
}

func (x *Index) openShards(indexPath string) error {
	x.names = slices.Sorted(maps.Keys(x.shardOf))
	for _, name := range x.names {
		shard := x.shardOf[name]
		if !filepath.IsLocal(shard) {
			return fmt.Errorf("%w: %s: tensor %q is mapped to %q, outside the model directory", ErrCorrupt, indexPath, name, shard)
		}
		f, ok := x.files[shard]
		if !ok {
			var err error
			if f, err = Open(filepath.Join(x.dir, shard)); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %s: shard %s (holding tensor %q) is missing: %w", ErrCorrupt, indexPath, shard, name, err)
			} else if err != nil {
				return err
			}
			x.files[shard] = f
		}
		if _, ok := f.hdr.infos[name]; !ok {
			return fmt.Errorf("%w: %s: tensor %q is mapped to %s, which does not contain it", ErrCorrupt, indexPath, name, shard)
		}
	}
	return nil
}

// Dir returns the model directory.
func (x *Index) Dir() string { return x.dir }

// Names returns every tensor name in sorted order.
func (x *Index) Names() []string { return slices.Clone(x.names) }

// Shards returns the shard file names in sorted order.
func (x *Index) Shards() []string { return slices.Sorted(maps.Keys(x.files)) }

// Shard returns the file name of the shard that holds the named tensor.
func (x *Index) Shard(name string) (string, bool) {
	s, ok := x.shardOf[name]
	return s, ok
}

// TotalSize returns the index's metadata.total_size (for a single file: the data bytes).
func (x *Index) TotalSize() int64 { return x.total }

// Metadata returns the "__metadata__" of the first shard (transformers writes the same map
// into every shard).
func (x *Index) Metadata() map[string]string {
	if len(x.files) == 0 {
		return nil
	}
	return x.files[x.Shards()[0]].Metadata()
}

// Info returns the dtype, shape and offsets (within its shard) of the named tensor.
func (x *Index) Info(name string) (TensorInfo, bool) {
	s, ok := x.shardOf[name]
	if !ok {
		return TensorInfo{}, false
	}
	return x.files[s].Info(name)
}

// Bytes returns the named tensor's bytes, a read-only view into its shard's mapping.
func (x *Index) Bytes(name string) ([]byte, error) {
	s, ok := x.shardOf[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q in %s", ErrNotFound, name, x.dir)
	}
	return x.files[s].Bytes(name)
}

// Release gives the named tensor's pages back (see File.Release).
func (x *Index) Release(name string) error {
	s, ok := x.shardOf[name]
	if !ok {
		return fmt.Errorf("%w: %q in %s", ErrNotFound, name, x.dir)
	}
	return x.files[s].Release(name)
}

// Float32s converts the named float tensor to a new []float32 (see File.Float32s).
func (x *Index) Float32s(name string) ([]float32, error) { return float32sOf(x, name) }

// Float64s converts the named float tensor to a new []float64 (see File.Float64s).
func (x *Index) Float64s(name string) ([]float64, error) { return float64sOf(x, name) }

// Int64s converts the named integer tensor to a new []int64 (see File.Int64s).
func (x *Index) Int64s(name string) ([]int64, error) { return int64sOf(x, name) }

// Close unmaps every shard.
func (x *Index) Close() error {
	var errs []error
	for _, f := range x.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}
