package shard_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/lrtrain/lrtrain/shard"
)

// randomModel draws a model-like tensor list: embeddings, blocks of tensors with
// random (sometimes tiny, sometimes odd) shapes, a head.
func randomModel(rng *rand.Rand) []shard.Tensor {
	dim := func() int64 { return []int64{1, 3, 7, 16, 33, 64}[rng.IntN(6)] }
	ts := []shard.Tensor{{Name: "model.embed_tokens.weight", Shape: []int64{dim(), dim()}}}
	blocks := 1 + rng.IntN(4)
	for b := range blocks {
		for k := range 1 + rng.IntN(5) {
			shape := []int64{dim(), dim()}[:1+rng.IntN(2)]
			ts = append(ts, shard.Tensor{Name: fmt.Sprintf("model.layers.%d.t%d.weight", b, k), Shape: shape})
		}
	}
	return append(ts, shard.Tensor{Name: "model.norm.weight", Shape: []int64{dim()}},
		shard.Tensor{Name: "lm_head.weight", Shape: []int64{dim(), dim()}})
}

// checkPlan verifies that the ranks' pieces tile every tensor exactly once (complete,
// disjoint), sit where the flat layout puts them, hold equal shares, and that the
// padding is as small as the alignment rules allow.
func checkPlan(t *testing.T, p *shard.Plan, tensors []shard.Tensor) {
	t.Helper()
	want := map[string]int64{}
	for _, x := range tensors {
		want[x.Name] = x.Numel()
	}
	word := int64(max(1, 4/p.ElemSize))
	covered := map[string][]shard.Piece{}
	var numel int64
	for u, unit := range p.Units {
		if unit.Len != unit.ShardLen*int64(p.Size) || unit.ShardLen%word != 0 {
			t.Fatalf("unit %d: length %d, shard %d, %d ranks, word %d", u, unit.Len, unit.ShardLen, p.Size, word)
		}
		offsets := map[string]int64{}
		var end, gaps int64
		for _, e := range unit.Tensors {
			if e.Offset%int64(p.Align/p.ElemSize) != 0 || e.Offset < end {
				t.Fatalf("unit %d: %s at %d (previous ends at %d, align %d bytes)", u, e.Name, e.Offset, end, p.Align)
			}
			gaps += e.Offset - end
			end = e.Offset + e.Numel()
			offsets[e.Name] = e.Offset
			numel += e.Numel()
		}
		if tail := unit.Len - end; tail < 0 || tail >= int64(p.Size)*word {
			t.Errorf("unit %d: tail padding %d with %d ranks", u, tail, p.Size)
		}
		if gaps >= int64(len(unit.Tensors))*int64(p.Align/p.ElemSize) {
			t.Errorf("unit %d: alignment gaps %d", u, gaps)
		}
		for r := range p.Size {
			held := int64(0)
			for _, pc := range p.Pieces(u, r) {
				if pc.At < 0 || pc.At+pc.Numel > unit.ShardLen {
					t.Fatalf("unit %d rank %d: piece %+v outside the shard of %d", u, r, pc, unit.ShardLen)
				}
				if got := int64(r)*unit.ShardLen + pc.At; got != offsets[pc.Tensor]+pc.From {
					t.Fatalf("unit %d rank %d: piece %+v is at flat %d, want %d", u, r, pc, got, offsets[pc.Tensor]+pc.From)
				}
				held += pc.Numel
				covered[pc.Tensor] = append(covered[pc.Tensor], pc)
			}
			if held > unit.ShardLen {
				t.Fatalf("unit %d rank %d holds %d > %d", u, r, held, unit.ShardLen)
			}
		}
	}
	for name, n := range want {
		pcs := covered[name]
		slices.SortFunc(pcs, func(a, b shard.Piece) int { return int(a.From - b.From) })
		var next int64
		for _, pc := range pcs {
			if pc.From != next {
				t.Fatalf("%s: piece starts at %d, want %d (pieces %+v)", name, pc.From, next, pcs)
			}
			next += pc.Numel
		}
		if next != n {
			t.Fatalf("%s: pieces cover %d of %d elements", name, next, n)
		}
	}
	if len(covered) != len(want) {
		t.Errorf("%d tensors covered, %d given", len(covered), len(want))
	}
	if got := p.TotalBytes(); got != numel*int64(p.ElemSize) {
		t.Errorf("TotalBytes %d, want %d", got, numel*int64(p.ElemSize))
	}
	// Balanced: every rank holds ShardBytes, at most one word per rank and the
	// alignment gaps more than an even split.
	var slack int64
	for _, u := range p.Units {
		slack += (u.Len - u.Numel) * int64(p.ElemSize)
	}
	if p.ShardBytes()*int64(p.Size) != p.TotalBytes()+slack {
		t.Errorf("%d ranks × %d bytes != %d bytes + %d padding", p.Size, p.ShardBytes(), p.TotalBytes(), slack)
	}
}

func TestPlanTilesEveryTensorOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 200 {
		tensors := randomModel(rng)
		size := 1 + rng.IntN(9)
		opts := shard.Options{ElemSize: []int{2, 4, 8}[rng.IntN(3)], Align: []int{8, 64}[rng.IntN(2)]}
		p, err := shard.NewPlan(tensors, size, opts)
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		checkPlan(t, p, tensors)
		if p.Blocks != shard.UnitOf(tensors[len(tensors)-3].Name)+1 {
			t.Fatalf("trial %d: %d blocks", trial, p.Blocks)
		}
	}
}

func TestPlanBalancesALargeModel(t *testing.T) {
	// The small llama preset's shapes: hidden 512, 8 layers, 4 KV heads, MLP 1408.
	var tensors []shard.Tensor
	tensors = append(tensors, shard.Tensor{Name: "model.embed_tokens.weight", Shape: []int64{8192, 512}})
	for b := range 8 {
		p := fmt.Sprintf("model.layers.%d.", b)
		for _, x := range []shard.Tensor{{"input_layernorm.weight", []int64{512}}, {"self_attn.q_proj.weight", []int64{512, 512}},
			{"self_attn.k_proj.weight", []int64{256, 512}}, {"self_attn.v_proj.weight", []int64{256, 512}},
			{"self_attn.o_proj.weight", []int64{512, 512}}, {"post_attention_layernorm.weight", []int64{512}},
			{"mlp.gate_proj.weight", []int64{1408, 512}}, {"mlp.up_proj.weight", []int64{1408, 512}}, {"mlp.down_proj.weight", []int64{512, 1408}}} {
			tensors = append(tensors, shard.Tensor{Name: p + x.Name, Shape: x.Shape})
		}
	}
	tensors = append(tensors, shard.Tensor{Name: "model.norm.weight", Shape: []int64{512}}, shard.Tensor{Name: "lm_head.weight", Shape: []int64{8192, 512}})
	for _, size := range []int{1, 2, 3, 8} {
		p, err := shard.NewPlan(tensors, size, shard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, p, tensors)
		ideal := float64(p.TotalBytes()) / float64(size)
		if over := float64(p.ShardBytes())/ideal - 1; over > 1e-5 {
			t.Errorf("%d ranks: %d bytes per rank, %.0f ideal (+%.2g)", size, p.ShardBytes(), ideal, over)
		}
	}
}

func TestPlanOneRankHoldsEverythingWhole(t *testing.T) {
	tensors := []shard.Tensor{{"model.embed_tokens.weight", []int64{5, 3}}, {"model.layers.0.a.weight", []int64{3, 3}},
		{"model.layers.0.b.bias", []int64{3}}, {"model.norm.weight", []int64{3}}}
	p, err := shard.NewPlan(tensors, 1, shard.Options{ElemSize: 4, Align: 4})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, p, tensors)
	for u, unit := range p.Units {
		if unit.Len != unit.Numel {
			t.Errorf("unit %d: %d elements padded to %d with one rank and no alignment", u, unit.Numel, unit.Len)
		}
		for i, pc := range p.Pieces(u, 0) {
			if e := unit.Tensors[i]; pc.From != 0 || pc.Numel != e.Numel() {
				t.Errorf("unit %d: piece %+v of %s is not the whole tensor", u, pc, e.Name)
			}
		}
	}
}

func TestPlanPadsWhenRanksOutnumberElements(t *testing.T) {
	tensors := []shard.Tensor{{"model.layers.0.a.weight", []int64{5}}, {"model.norm.weight", []int64{}}}
	p, err := shard.NewPlan(tensors, 8, shard.Options{ElemSize: 4, Align: 4})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, p, tensors)
	block := p.Units[0]
	if block.Len != 8 || block.ShardLen != 1 {
		t.Fatalf("5 elements over 8 ranks: length %d, shard %d; want 8 and 1", block.Len, block.ShardLen)
	}
	for r := range 8 {
		if n := len(p.Pieces(0, r)); (r < 5) != (n == 1) {
			t.Errorf("rank %d holds %d pieces", r, n)
		}
	}
	// bfloat16 slices travel as float32 words: two elements per rank at least.
	p, err = shard.NewPlan(tensors, 8, shard.Options{ElemSize: 2, Align: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, p, tensors)
	if p.Units[0].ShardLen != 2 {
		t.Errorf("bfloat16 shard of %d elements, want 2", p.Units[0].ShardLen)
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	tensors := randomModel(rand.New(rand.NewPCG(1, 2)))
	a, _ := shard.NewPlan(tensors, 3, shard.Options{})
	b, _ := shard.NewPlan(slices.Clone(tensors), 3, shard.Options{})
	if !reflect.DeepEqual(a, b) || a.Describe() != b.Describe() {
		t.Error("two plans of the same tensors differ")
	}
}

func TestPlanRejects(t *testing.T) {
	ok := []shard.Tensor{{"model.layers.0.a", []int64{4}}}
	for _, c := range []struct {
		name    string
		tensors []shard.Tensor
		size    int
		opts    shard.Options
	}{
		{"no ranks", ok, 0, shard.Options{}},
		{"duplicate", append(slices.Clone(ok), ok[0]), 2, shard.Options{}},
		{"negative dim", []shard.Tensor{{"model.layers.0.a", []int64{-1}}}, 2, shard.Options{}},
		{"missing block", []shard.Tensor{{"model.layers.1.a", []int64{4}}}, 2, shard.Options{}},
		{"element size", ok, 2, shard.Options{ElemSize: 3}},
		{"alignment", ok, 2, shard.Options{ElemSize: 4, Align: 6}},
	} {
		if _, err := shard.NewPlan(c.tensors, c.size, c.opts); !errors.Is(err, shard.ErrPlan) {
			t.Errorf("%s: %v, want ErrPlan", c.name, err)
		}
	}
}

func TestUnitOf(t *testing.T) {
	for name, want := range map[string]int{
		"model.embed_tokens.weight":                          shard.Embeddings,
		"model.layers.0.self_attn.q_proj.weight":             0,
		"model.layers.17.mlp.down_proj.weight":               17,
		"model.norm.weight":                                  shard.Head,
		"lm_head.weight":                                     shard.Head,
		"roberta.embeddings.LayerNorm.weight":                shard.Embeddings,
		"bert.embeddings.word_embeddings.weight":             shard.Embeddings,
		"roberta.encoder.layer.3.attention.self.query.bias":  3,
		"transformer.h.2.attn.c_attn.weight":                 2,
		"transformer.wte.weight":                             shard.Embeddings,
		"bert.pooler.dense.weight":                           shard.Head,
		"model.layers.5.self_attn.rotary_emb.inv_freq.extra": 5,
	} {
		if got := shard.UnitOf(name); got != want {
			t.Errorf("UnitOf(%q) = %d, want %d", name, got, want)
		}
	}
}

// Gather buffers: a unit at most an eighth shorter than another is gathered into a
// buffer of the longer one's length (the small llama's embedding table and its head,
// which also holds the final norm); units further apart keep their own length, and no
// buffer is shorter than its unit.
func TestBufferLenSharesNearSizes(t *testing.T) {
	tensors := []shard.Tensor{
		{Name: "model.embed_tokens.weight", Shape: []int64{8192, 512}},
		{Name: "model.layers.0.mlp.up_proj.weight", Shape: []int64{1408, 512}},
		{Name: "model.layers.1.mlp.up_proj.weight", Shape: []int64{1408, 520}},  // 1.6 % longer than block 0
		{Name: "model.layers.2.mlp.up_proj.weight", Shape: []int64{1408, 1024}}, // twice block 0
		{Name: "model.norm.weight", Shape: []int64{512}},
		{Name: "lm_head.weight", Shape: []int64{8192, 512}},
	}
	p, err := shard.NewPlan(tensors, 2, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := p.Unit(shard.Embeddings)
	head, _ := p.Unit(p.Blocks)
	b0, _ := p.Unit(0)
	b1, _ := p.Unit(1)
	b2, _ := p.Unit(2)
	want := map[int]int64{emb: p.Units[head].Len, head: p.Units[head].Len, b0: p.Units[b1].Len,
		b1: p.Units[b1].Len, b2: p.Units[b2].Len}
	for u, n := range want {
		if got := p.BufferLen(u); got != n {
			t.Errorf("%d (Len %d): BufferLen %d, want %d", p.Units[u].Block, p.Units[u].Len, got, n)
		}
	}
	if p.Units[emb].Len == p.Units[head].Len || p.Units[b0].Len == p.Units[b1].Len {
		t.Fatal("the case needs units of nearly, not exactly, one length")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 50 {
		ts := randomModel(rng)
		p, err := shard.NewPlan(ts, 1+rng.IntN(4), shard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for u, unit := range p.Units {
			if n := p.BufferLen(u); n < unit.Len || 8*n > 9*unit.Len {
				t.Errorf("unit of Len %d: BufferLen %d, want from Len to 9/8 of it", unit.Len, n)
			}
		}
	}
}
