package shard_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/safetensors"
	"github.com/lrtrain/lrtrain/shard"
)

// guardedReader serves a checkpoint's tensors from anonymous mappings in which only
// the pages holding one rank's pieces are readable: touching any other page of a
// tensor kills the test process with a fault.
type guardedReader struct {
	*safetensors.File
	maps   map[string][]byte
	called map[string]bool
}

func newGuardedReader(t *testing.T, path string, plan *shard.Plan, rank int) *guardedReader {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	page := os.Getpagesize()
	g := &guardedReader{File: f, maps: map[string][]byte{}, called: map[string]bool{}}
	for _, name := range f.Names() {
		raw, _ := f.Bytes(name)
		m, err := syscall.Mmap(-1, 0, (len(raw)+page-1)/page*page+page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Munmap(m) })
		copy(m, raw)
		if err := syscall.Mprotect(m, syscall.PROT_NONE); err != nil {
			t.Fatal(err)
		}
		g.maps[name] = m[:len(raw)]
	}
	for u := range plan.Units {
		for _, pc := range plan.Pieces(u, rank) {
			info, _ := f.Info(pc.Tensor)
			es := int64(info.DType.Size())
			lo := pc.From * es / int64(page) * int64(page)
			hi := (pc.From + pc.Numel) * es
			m := g.maps[pc.Tensor]
			if err := syscall.Mprotect(m[lo:hi:hi], syscall.PROT_READ); err != nil {
				t.Fatal(err)
			}
		}
	}
	return g
}

func (g *guardedReader) Bytes(name string) ([]byte, error) {
	g.called[name] = true
	return g.maps[name], nil
}

// Each rank reads only the pages of its own pieces, and the ranks' shards put side by
// side are the flat buffers of the weights model.Load makes (same dtype conversion).
func TestLocalShardsReadOnlyTheirPieces(t *testing.T) {
	for _, c := range []struct {
		disk    string
		compute gotch.DType
		size    int
	}{{"", gotch.Float, 3}, {"bfloat16", gotch.Float, 2}, {"", gotch.BFloat16, 2}} {
		t.Run(fmt.Sprintf("disk=%s/compute=%v/ranks=%d", or(c.disk, "float32"), c.compute, c.size), func(t *testing.T) {
			dir := writeModel(t, "llama", "tiny", c.disk)
			tensors := frozenTensors(t, dir)
			plan, err := shard.NewPlan(tensors, c.size, shard.Options{ElemSize: int(c.compute.Size())})
			if err != nil {
				t.Fatal(err)
			}
			whole := wholeFlat(t, dir, plan, c.compute)
			for rank := range c.size {
				src := newGuardedReader(t, filepath.Join(dir, safetensors.SingleFileName), plan, rank)
				local, err := shard.LoadLocal(src, plan, rank, c.compute, nil)
				if err != nil {
					t.Fatal(err)
				}
				for u, unit := range plan.Units {
					got, err := tensorkit.Float32s(local.Shards[u])
					if err != nil {
						t.Fatal(err)
					}
					want := whole[u][int64(rank)*unit.ShardLen : int64(rank+1)*unit.ShardLen]
					if d := firstDiff(got, want); d != "" {
						t.Errorf("rank %d, unit %d: %s", rank, u, d)
					}
					for _, e := range unit.Tensors {
						held := false
						for _, pc := range plan.Pieces(u, rank) {
							held = held || pc.Tensor == e.Name
						}
						if src.called[e.Name] && !held {
							t.Errorf("rank %d asked for %s, of which it holds nothing", rank, e.Name)
						}
					}
				}
				local.Close()
			}
		})
	}
}

// wholeFlat lays out the weights of the model loaded whole as the plan's flat buffers
// (zero in the gaps), as float32.
func wholeFlat(t *testing.T, dir string, plan *shard.Plan, dt gotch.DType) [][]float32 {
	t.Helper()
	m, err := model.Load(dir, model.WithDType(dt))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	values := map[string][]float32{}
	for _, w := range m.Weights() {
		if values[w.Name], err = tensorkit.Float32s(w.Tensor); err != nil {
			t.Fatal(err)
		}
	}
	var out [][]float32
	for _, u := range plan.Units {
		flat := make([]float32, u.Len)
		for _, e := range u.Tensors {
			v := values[e.Name]
			if int64(len(v)) != e.Numel() || math.IsNaN(float64(v[0])) {
				t.Fatalf("%s: %d values", e.Name, len(v))
			}
			copy(flat[e.Offset:], v)
		}
		out = append(out, flat)
	}
	return out
}
