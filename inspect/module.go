package inspect

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is the block an adapted module belongs to.
type Kind string

// The kinds of adapted modules.
const (
	Attn Kind = "attn" // attention projections (q, k, v, o, fused qkv, …)
	MLP  Kind = "mlp"  // feed-forward layers (gate, up, down, intermediate, output, …)
)

// Names, lower-cased, that mark a module path as attention or MLP. Segments are the
// containers (self_attn, mlp, …); leaves are the linear layers' own names, used when no
// container says.
var (
	attnSegments = set("self_attn", "attn", "attention", "self_attention", "selfattention",
		"crossattention", "cross_attn", "encdecattention")
	mlpSegments = set("mlp", "feed_forward", "feedforward", "ffn", "intermediate",
		"densereludense", "block_sparse_moe", "experts", "moe")
	attnLeaves = set("q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj", "query", "key", "value",
		"query_key_value", "c_attn", "wqkv", "out_proj", "in_proj")
	headSegments = set("lm_head", "classifier", "score", "pooler", "embed_tokens", "embeddings", "wte", "wpe")
	mlpLeaves    = set("gate_proj", "up_proj", "down_proj", "gate_up_proj", "fc1", "fc2", "c_fc",
		"w1", "w2", "w3", "dense_h_to_4h", "dense_4h_to_h", "wi", "wo", "wi_0", "wi_1")
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// ParseModule reads the layer index and the kind from a Hugging Face module path.
//
// The layer is the first all-digit segment ("model.layers.12.self_attn.q_proj" → 12,
// "roberta.encoder.layer.3.attention.self.query" → 3, "transformer.h.5.mlp.c_fc" → 5), or
// −1 when there is none ("mlp.down_proj"). The kind comes from the segments after it, in
// this order: a container segment (self_attn, attention, attn, … → Attn; mlp, intermediate,
// feed_forward, DenseReluDense, experts, … → MLP); else the module's own name (q_proj,
// query, c_attn, out_proj, … → Attn; gate_proj, up_proj, down_proj, fc1, fc2, c_fc, w1, … →
// MLP); else an "output" segment (BERT and RoBERTa's FFN output, "layer.3.output.dense",
// while the attention output is "layer.3.attention.output.dense") → MLP. Anything else —
// lm_head, embeddings, a classification head (classifier, score, pooler) — is ErrModule.
func ParseModule(name string) (layer int, kind Kind, err error) {
	segs := strings.Split(strings.ToLower(strings.TrimSpace(name)), ".")
	for _, s := range segs {
		if headSegments[s] {
			return -1, "", fmt.Errorf("%w: %q is a head or an embedding, not a transformer block's module", ErrModule, name)
		}
	}
	layer, rest := -1, segs
	for i, s := range segs {
		if s == "" || strings.Trim(s, "0123456789") != "" {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil {
			layer, rest = n, segs[i+1:]
			break
		}
	}
	for _, s := range rest {
		if attnSegments[s] {
			return layer, Attn, nil
		}
	}
	for _, s := range rest {
		if mlpSegments[s] {
			return layer, MLP, nil
		}
	}
	if len(rest) > 0 {
		switch leaf := rest[len(rest)-1]; {
		case attnLeaves[leaf]:
			return layer, Attn, nil
		case mlpLeaves[leaf]:
			return layer, MLP, nil
		}
	}
	for _, s := range rest {
		if s == "output" {
			return layer, MLP, nil
		}
	}
	return layer, "", fmt.Errorf("%w: %q is neither an attention nor an MLP module", ErrModule, name)
}

// LayerRank is one adapted module's stable ranks: of its learned update ΔW and of B·A,
// the update plain LoRA would make with the same factors (sr(X) = ‖X‖²_F/σ_max(X)²; φ
// acting elementwise lets ΔW's rank exceed r).
type LayerRank struct {
	Module        string
	Layer         int
	Kind          Kind
	SRDelta, SRBA float64
}

// NewLayerRank fills Layer and Kind from the module name (ParseModule).
func NewLayerRank(module string, srDelta, srBA float64) (LayerRank, error) {
	layer, kind, err := ParseModule(module)
	if err != nil {
		return LayerRank{}, err
	}
	return LayerRank{Module: module, Layer: layer, Kind: kind, SRDelta: srDelta, SRBA: srBA}, nil
}
