package flops

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tiny is a config small enough to count by hand: hidden 4, 2 heads of 2, 1 KV head
// (k and v are 4→2), intermediate 8, 2 layers, vocab 10, r = 1, K = 2. Per layer the
// modules' d_in·d_out are q 16, k 8, v 8, o 16, gate 32, up 32, down 32 (sum 144).
func tiny(adapted ...string) Config {
	c := Config{Hidden: 4, Intermediate: 8, Layers: 2, Heads: 2, KVHeads: 1, Vocab: 10, R: 1, K: 2,
		Adapted: map[string]bool{}}
	for _, m := range adapted {
		c.Adapted[m] = true
	}
	return c
}

// tabulated is c with φ counted per entry of its table path.
func tabulated(c Config) Config {
	c.PhiTabulated = true
	return c
}

// batch has N = 3 tokens; one attention product is 2·B·H·T²·head_dim = 2·1·2·9·2 = 72.
var batch = Batch{B: 1, T: 3}

// All counts below are exact small integers held in float64, so they compare with ==.
func TestStepHandCounted(t *testing.T) {
	all := tiny(Modules...)
	for _, tc := range []struct {
		name string
		c    Config
		m    Method
		want Count
	}{
		{
			// Forward 2N·144 per layer = 864, twice: 1728. ∂x everywhere but layer 0's
			// q, k, v (32 of the 288): 2N·256 = 1536. Adapters 6N·r·(d_in + d_out) = 18·64
			// per layer, less layer 0's ∂x into q, k, v (2N·r·d_in = 6·4 each): 2304 − 72.
			// Attention: 6 products per layer (2 forward, 4 backward) · 72 · 2 layers. Head
			// 2N·4·10 = 240 forward, as much for ∂x.
			name: "lora, all seven", c: all, m: LoRA,
			want: Count{Projections: 1728 + 1536 + 2232, Attention: 864, Head: 480},
		},
		{
			// The same frozen-shaped products (3264); B·A, ∂B, ∂A: 3·2·r·288 = 1728;
			// φ: K·(8 + 16)·288 = 13824; Gᵀ·x: 2N·288 = 1728.
			name: "lrlora, all seven", c: all, m: LRLoRA,
			want: Count{Projections: 3264, Adapter: 1728, Phi: 13824, DeltaGrad: 1728, Attention: 864, Head: 480},
		},
		{
			// Only v (4→2) adapted. Layer 0: q and k need no gradient, so attention's
			// backward is ∂V alone (3 products, 216); layer 1 all 6 (432). ∂x through the
			// frozen weights as above (1536). Adapter on v: forward 2N·r·6 = 36, ∂h and
			// ∂B 2·2N·r·2 = 24, ∂A 2N·r·4 = 12·2 = 24, ∂x 24 in layer 1 only: 84 + 108.
			name: "lora, v only", c: tiny("v_proj"), m: LoRA,
			want: Count{Projections: 1728 + 1536 + 192, Attention: 648, Head: 480},
		},
		{
			// B·A, ∂B, ∂A: 6·r·8 per layer = 96; φ: 2·24·8·2 = 768; Gᵀ·x: 2N·8·2 = 96.
			name: "lrlora, v only", c: tiny("v_proj"), m: LRLoRA,
			want: Count{Projections: 3264, Adapter: 96, Phi: 768, DeltaGrad: 96, Attention: 648, Head: 480},
		},
		{
			// As "lrlora, all seven" with φ tabulated: (11 + 20)·288 = 8928 instead of
			// K·(8 + 16)·288; nothing else changes.
			name: "lrlora, all seven, φ tabulated", c: tabulated(all), m: LRLoRA,
			want: Count{Projections: 3264, Adapter: 1728, Phi: 8928, DeltaGrad: 1728, Attention: 864, Head: 480},
		},
		{
			// "lrlora, all seven" over 3 micro-batches (Accum 3, below): every
			// token-proportional part 3×, B·A, ∂B, ∂A and φ once.
			name: "lrlora, all seven, 3 micro-batches", c: all, m: LRLoRA,
			want: Count{Projections: 3 * 3264, Adapter: 1728, Phi: 13824, DeltaGrad: 3 * 1728, Attention: 3 * 864, Head: 3 * 480},
		},
		{
			name: "lora, all seven, 3 micro-batches", c: all, m: LoRA,
			want: Count{Projections: 3 * (1728 + 1536 + 2232), Attention: 3 * 864, Head: 3 * 480},
		},
		{
			// Nothing trainable: forward only (1728, 2 products per layer, the head).
			name: "no adapters", c: tiny(), m: LoRA,
			want: Count{Projections: 1728, Attention: 288, Head: 240},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := batch
			if strings.HasSuffix(tc.name, "3 micro-batches") {
				b.Accum = 3
			}
			got, err := Step(tc.c, b, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBoundHandCounted(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want float64
	}{
		{tiny(Modules...), 21888.0 / 6840},
		{tiny("v_proj"), 5352.0 / 4584},
	} {
		got, err := Bound(tc.c, batch)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want { // both sides are exact integers; one rounding in the division
			t.Errorf("%v: bound %v, want %v", tc.c.Adapted, got, tc.want)
		}
	}
}

// The extra work of LR-LoRA does not grow with tokens as fast as the shared work, except
// Gᵀ·x; φ's grows with K: the bound must fall with tokens and rise with K.
func TestBoundMonotone(t *testing.T) {
	small := Config{Hidden: 512, Intermediate: 1408, Layers: 8, Heads: 8, KVHeads: 4, Vocab: 8192, R: 8, K: 50,
		Adapted: tiny(Modules...).Adapted}
	b256, err := Bound(small, Batch{B: 1, T: 256})
	if err != nil {
		t.Fatal(err)
	}
	b512, err := Bound(small, Batch{B: 2, T: 256})
	if err != nil {
		t.Fatal(err)
	}
	if !(b256 > b512 && b512 > 1) {
		t.Errorf("bound at 1×256 %v, at 2×256 %v: want 1×256 > 2×256 > 1", b256, b512)
	}
	more := small
	more.K = 100
	b512k, err := Bound(more, Batch{B: 2, T: 256})
	if err != nil {
		t.Fatal(err)
	}
	if b512k <= b512 {
		t.Errorf("bound at K = 100 %v not above K = 50's %v", b512k, b512)
	}
}

func TestFromHF(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	cfg := `{"hidden_size": 4, "intermediate_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2,
		"num_key_value_heads": 1, "vocab_size": 10, "model_type": "llama"}`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := FromHF(path, 1, 2, Modules)
	if err != nil {
		t.Fatal(err)
	}
	want := tiny(Modules...)
	if got.Hidden != want.Hidden || got.Intermediate != want.Intermediate || got.Layers != want.Layers ||
		got.Heads != want.Heads || got.KVHeads != want.KVHeads || got.Vocab != want.Vocab ||
		got.R != want.R || got.K != want.K || len(got.Adapted) != len(Modules) {
		t.Errorf("FromHF: %+v, want %+v", got, want)
	}
	if _, err := FromHF(path, 1, 2, []string{"lm_head"}); err == nil || !strings.Contains(err.Error(), "lm_head") {
		t.Errorf("unknown module: err %v", err)
	}
	if _, err := FromHF(filepath.Join(dir, "missing.json"), 1, 2, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err %v, want os.ErrNotExist wrapped", err)
	}
}

func TestStepRejectsBadInput(t *testing.T) {
	bad := tiny(Modules...)
	bad.Heads = 3 // 4 % 3 != 0
	if _, err := Step(bad, batch, LoRA); err == nil {
		t.Error("hidden 4 over 3 heads: no error")
	}
	if _, err := Step(tiny(), Batch{B: 0, T: 3}, LoRA); err == nil {
		t.Error("empty batch: no error")
	}
	if _, err := Step(tiny(), Batch{B: 1, T: 3, Accum: -1}, LoRA); err == nil {
		t.Error("negative micro-batch count: no error")
	}
}
