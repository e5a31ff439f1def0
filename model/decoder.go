package model

import (
	"fmt"
	"regexp"

	"github.com/sugarme/gotch/ts"
)

// decoder is the pre-norm decoder-only transformer of LlamaForCausalLM and its
// relatives, bound to the Hugging Face names
//
//	model.embed_tokens.weight
//	model.layers.N.input_layernorm.weight
//	model.layers.N.self_attn.{q,k,v,o}_proj.{weight,bias}     (Phi-3: qkv_proj, o_proj)
//	model.layers.N.post_attention_layernorm.weight
//	model.layers.N.mlp.{gate,up,down}_proj.weight             (Phi-3: gate_up_proj, down_proj)
//	model.norm.weight
//	lm_head.weight                                            (absent with tie_word_embeddings)
//
// Each layer is h += attn(rms(h)); h += mlp(rms(h)). Differences between the
// architectures are config-driven: Qwen2's q/k/v biases, Llama's attention_bias and
// mlp_bias, sliding windows (Mistral, Phi-3, Qwen2), Phi-3's fused projections and
// residual dropout, tied embeddings.
type decoder struct {
	cfg       *Config
	embed     *ts.Tensor
	layers    []*decoderLayer
	norm      *rmsNorm
	lmHead    *Linear
	rope      *rope
	residDrop float64
	embedDrop float64
}

type decoderLayer struct {
	inputNorm, postNorm *rmsNorm
	attn                *selfAttention
	mlp                 *gatedMLP
}

// rotaryBuffer matches the inv_freq buffers old checkpoints saved; transformers ignores them.
var rotaryBuffer = regexp.MustCompile(`^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$`)

func buildDecoder(c *Config, b *binder) (network, error) {
	h := c.HiddenSize
	d := &decoder{cfg: c}
	if c.ModelType == "phi3" {
		d.residDrop, d.embedDrop = c.ResidPdrop, c.EmbdPdrop
	}
	d.embed = b.weight("model.embed_tokens.weight", []int64{int64(c.VocabSize), int64(h)}, InitNormal)
	for i := 0; i < c.NumHiddenLayers; i++ {
		p := fmt.Sprintf("model.layers.%d", i)
		d.layers = append(d.layers, &decoderLayer{
			inputNorm: bindRMSNorm(b, p+".input_layernorm", h, c.RMSNormEps),
			attn:      bindSelfAttention(b, p+".self_attn", c, i),
			postNorm:  bindRMSNorm(b, p+".post_attention_layernorm", h, c.RMSNormEps),
			mlp:       bindGatedMLP(b, p+".mlp", c),
		})
	}
	d.norm = bindRMSNorm(b, "model.norm", h, c.RMSNormEps)
	if c.TieWordEmbeddings {
		d.lmHead = &Linear{Name: "lm_head", DOut: c.VocabSize, DIn: h, Weight: d.embed, head: true}
	} else {
		d.lmHead = b.outputLinear("lm_head", c.VocabSize, h)
	}
	b.ignore = func(name string) bool {
		return rotaryBuffer.MatchString(name) || (c.TieWordEmbeddings && name == "lm_head.weight")
	}
	if !b.recording() {
		r, err := newRope(c, b.dtype, b.device)
		if err != nil {
			return nil, err
		}
		d.rope = r
	}
	return d, nil
}

func (d *decoder) numBlocks() int { return len(d.layers) }

func (d *decoder) close() { d.rope.close() }

// prepare computes the rotary tables for the pass; masks are built on first use.
func (d *decoder) prepare(ctx *fwdCtx) error {
	s := ctx.own
	pos := ctx.in.PositionIDs
	if pos == nil {
		pos = s.view(s.arange(ctx.t, ctx.device), 1, ctx.t)
	}
	ctx.rope = d.rope
	ctx.cos, ctx.sin = d.rope.cosSin(s, pos, ctx.dtype)
	return s.err
}

func (d *decoder) embedTokens(s *scope, ctx *fwdCtx) *ts.Tensor {
	if ctx.rows == nil {
		return ctx.dropout(s, s.embedding(d.embed, ctx.in.InputIDs), d.embedDrop)
	}
	src, err := newRowSource(d.embed, ctx.rows)
	if err != nil {
		s.fail(err)
		return nil
	}
	return ctx.dropout(s, src.lookup(s, ctx.in.InputIDs), d.embedDrop)
}

// vocabWeights lists the vocabulary matrices (and the head's bias) that a pass
// computing its loss in the head reads by rows: the embedding table, and the LM
// head's weight where it is not tied to it.
func (d *decoder) vocabWeights() []*ts.Tensor {
	ws := []*ts.Tensor{d.embed}
	if d.lmHead.Weight != d.embed {
		ws = append(ws, d.lmHead.Weight)
	}
	if d.lmHead.Bias != nil {
		ws = append(ws, d.lmHead.Bias)
	}
	return ws
}

func (d *decoder) block(s *scope, ctx *fwdCtx, i int, h *ts.Tensor) *ts.Tensor {
	l := d.layers[i]
	a := l.attn.forward(s, ctx, l.inputNorm.forward(s, h))
	h = s.add(h, ctx.dropout(s, a, d.residDrop))
	m := l.mlp.forward(s, l.postNorm.forward(s, h))
	return s.add(h, ctx.dropout(s, m, d.residDrop))
}

func (d *decoder) head(s *scope, ctx *fwdCtx, h *ts.Tensor) *ts.Tensor {
	return d.lmHead.forward(s, d.finalNorm(s, h))
}

func (d *decoder) finalNorm(s *scope, h *ts.Tensor) *ts.Tensor { return d.norm.forward(s, h) }

func (d *decoder) vocab() *Linear { return d.lmHead }
