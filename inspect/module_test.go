package inspect

import (
	"errors"
	"testing"
)

func TestParseModule(t *testing.T) {
	cases := []struct {
		name  string
		layer int
		kind  Kind
	}{
		// Llama, Mistral, Qwen2 (and PEFT's wrapped names).
		{"model.layers.12.self_attn.q_proj", 12, Attn},
		{"model.layers.0.self_attn.k_proj", 0, Attn},
		{"model.layers.3.self_attn.v_proj", 3, Attn},
		{"model.layers.31.self_attn.o_proj", 31, Attn},
		{"model.layers.7.mlp.gate_proj", 7, MLP},
		{"model.layers.7.mlp.up_proj", 7, MLP},
		{"model.layers.7.mlp.down_proj", 7, MLP},
		{"base_model.model.model.layers.5.self_attn.q_proj", 5, Attn},
		// Phi-3's fused projections.
		{"model.layers.2.self_attn.qkv_proj", 2, Attn},
		{"model.layers.2.mlp.gate_up_proj", 2, MLP},
		// Without a layer index.
		{"mlp.down_proj", -1, MLP},
		{"self_attn.q_proj", -1, Attn},
		{"q_proj", -1, Attn},
		{"down_proj", -1, MLP},
		// RoBERTa / BERT.
		{"roberta.encoder.layer.3.attention.self.query", 3, Attn},
		{"roberta.encoder.layer.3.attention.self.key", 3, Attn},
		{"roberta.encoder.layer.3.attention.self.value", 3, Attn},
		{"roberta.encoder.layer.3.attention.output.dense", 3, Attn},
		{"roberta.encoder.layer.3.intermediate.dense", 3, MLP},
		{"roberta.encoder.layer.3.output.dense", 3, MLP},
		{"bert.encoder.layer.11.output.dense", 11, MLP},
		{"encoder.layer.0.intermediate.dense", 0, MLP},
		{"intermediate.dense", -1, MLP},
		{"output.dense", -1, MLP},
		// GPT-2, GPT-NeoX, Falcon, OPT, T5, Mixtral, ViT.
		{"transformer.h.5.attn.c_attn", 5, Attn},
		{"transformer.h.5.attn.c_proj", 5, Attn},
		{"transformer.h.5.mlp.c_fc", 5, MLP},
		{"transformer.h.5.mlp.c_proj", 5, MLP},
		{"gpt_neox.layers.4.attention.query_key_value", 4, Attn},
		{"gpt_neox.layers.4.attention.dense", 4, Attn},
		{"gpt_neox.layers.4.mlp.dense_h_to_4h", 4, MLP},
		{"transformer.h.1.self_attention.query_key_value", 1, Attn},
		{"model.decoder.layers.9.self_attn.out_proj", 9, Attn},
		{"model.decoder.layers.9.fc1", 9, MLP},
		{"model.decoder.layers.9.fc2", 9, MLP},
		{"encoder.block.2.layer.0.SelfAttention.q", 2, Attn},
		{"decoder.block.2.layer.1.EncDecAttention.o", 2, Attn},
		{"encoder.block.2.layer.1.DenseReluDense.wi", 2, MLP},
		{"model.layers.3.block_sparse_moe.experts.7.w1", 3, MLP},
		{"vit.encoder.layer.6.attention.attention.query", 6, Attn},
		{"vit.encoder.layer.6.output.dense", 6, MLP},
		// Case and spaces.
		{" Model.Layers.8.Self_Attn.Q_Proj ", 8, Attn},
	}
	for _, c := range cases {
		layer, kind, err := ParseModule(c.name)
		if err != nil || layer != c.layer || kind != c.kind {
			t.Errorf("ParseModule(%q) = %d, %q, %v; want %d, %q", c.name, layer, kind, err, c.layer, c.kind)
		}
	}
}

func TestParseModuleRejectsNonAdapterModules(t *testing.T) {
	for _, name := range []string{
		"lm_head", "model.embed_tokens", "roberta.pooler.dense", "classifier.dense",
		"classifier.out_proj", "transformer.wte", "score", "model.layers.3.input_layernorm", "", "model.layers.3",
	} {
		if _, _, err := ParseModule(name); !errors.Is(err, ErrModule) {
			t.Errorf("ParseModule(%q) error = %v, want ErrModule", name, err)
		}
	}
}

func TestNewLayerRank(t *testing.T) {
	r, err := NewLayerRank("model.layers.4.mlp.up_proj", 3.5, 1.25)
	want := LayerRank{Module: "model.layers.4.mlp.up_proj", Layer: 4, Kind: MLP, SRDelta: 3.5, SRBA: 1.25}
	if err != nil || r != want {
		t.Errorf("NewLayerRank = %+v, %v; want %+v", r, err, want)
	}
	if _, err := NewLayerRank("lm_head", 1, 1); !errors.Is(err, ErrModule) {
		t.Errorf("NewLayerRank(lm_head) error = %v", err)
	}
}
