package model

import (
	"fmt"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// encoder is the post-LN BERT encoder of BertForSequenceClassification and
// RobertaForSequenceClassification, bound to the Hugging Face names (P = "bert" or
// "roberta")
//
//	P.embeddings.{word,position,token_type}_embeddings.weight, P.embeddings.LayerNorm.*
//	P.encoder.layer.N.attention.self.{query,key,value}.*
//	P.encoder.layer.N.attention.output.{dense,LayerNorm}.*
//	P.encoder.layer.N.intermediate.dense.*, P.encoder.layer.N.output.{dense,LayerNorm}.*
//	BERT:    bert.pooler.dense.*, classifier.*                   (trainable head)
//	RoBERTa: classifier.dense.*, classifier.out_proj.*            (trainable head)
//
// A layer is h = LN(h + drop(attn(h))); h = LN(h + drop(out(gelu(inter(h))))). RoBERTa
// numbers positions from padding_idx + 1 and gives padding padding_idx. Head tensors a
// checkpoint lacks (a pretrained backbone) are drawn as transformers does; tensors of
// the pretraining heads (lm_head, cls) and RoBERTa's unused pooler are ignored.
type encoder struct {
	cfg     *Config
	roberta bool
	padIdx  int64

	wordEmb, posEmb, typeEmb *ts.Tensor
	embNorm                  *layerNorm
	layers                   []*encoderLayer

	pooler, classifier *Linear // BERT
	clsDense, clsOut   *Linear // RoBERTa
}

type encoderLayer struct {
	query, key, value *Linear
	attnOut           *Linear
	attnNorm          *layerNorm
	inter, out        *Linear
	outNorm           *layerNorm
}

func buildEncoder(c *Config, b *binder) (network, error) {
	e := &encoder{cfg: c, roberta: c.ModelType == "roberta"}
	if id, ok := c.PadTokenID.First(); ok {
		e.padIdx = int64(id)
	}
	p := c.ModelType
	b.alternates = func(name string) []string { return encoderAlternates(p, name) }
	b.ignore = func(name string) bool { return encoderIgnored(e.roberta, p, name) }
	h, eps := c.HiddenSize, c.LayerNormEps
	e.wordEmb = b.weight(p+".embeddings.word_embeddings.weight", []int64{int64(c.VocabSize), int64(h)}, InitNormal)
	e.posEmb = b.weight(p+".embeddings.position_embeddings.weight", []int64{int64(c.MaxPositionEmbeddings), int64(h)}, InitNormal)
	e.typeEmb = b.weight(p+".embeddings.token_type_embeddings.weight", []int64{int64(c.TypeVocabSize), int64(h)}, InitNormal)
	e.embNorm = bindLayerNorm(b, p+".embeddings.LayerNorm", h, eps)
	for i := 0; i < c.NumHiddenLayers; i++ {
		l := fmt.Sprintf("%s.encoder.layer.%d", p, i)
		e.layers = append(e.layers, &encoderLayer{
			query:    b.linear(l+".attention.self.query", h, h, true),
			key:      b.linear(l+".attention.self.key", h, h, true),
			value:    b.linear(l+".attention.self.value", h, h, true),
			attnOut:  b.linear(l+".attention.output.dense", h, h, true),
			attnNorm: bindLayerNorm(b, l+".attention.output.LayerNorm", h, eps),
			inter:    b.linear(l+".intermediate.dense", c.IntermediateSize, h, true),
			out:      b.linear(l+".output.dense", h, c.IntermediateSize, true),
			outNorm:  bindLayerNorm(b, l+".output.LayerNorm", h, eps),
		})
	}
	if e.roberta {
		e.clsDense = b.headLinear("classifier.dense", h, h)
		e.clsOut = b.headLinear("classifier.out_proj", c.NumLabels, h)
	} else {
		e.pooler = b.headLinear("bert.pooler.dense", h, h)
		e.classifier = b.headLinear("classifier", c.NumLabels, h)
	}
	return e, nil
}

// encoderAlternates are other spellings of a wanted tensor: without the base-model
// prefix (a bare BertModel/RobertaModel checkpoint) and with LayerNorm's old gamma/beta.
func encoderAlternates(prefix, name string) []string {
	names := []string{name}
	if rest, ok := strings.CutPrefix(name, prefix+"."); ok {
		names = append(names, rest)
	}
	var out []string
	for _, n := range names {
		if n != name {
			out = append(out, n)
		}
		if base, ok := strings.CutSuffix(n, ".LayerNorm.weight"); ok {
			out = append(out, base+".LayerNorm.gamma")
		}
		if base, ok := strings.CutSuffix(n, ".LayerNorm.bias"); ok {
			out = append(out, base+".LayerNorm.beta")
		}
	}
	return out
}

// encoderIgnored reports checkpoint tensors that sequence classification does not use.
func encoderIgnored(roberta bool, prefix, name string) bool {
	name = strings.TrimPrefix(name, prefix+".")
	switch {
	case name == "embeddings.position_ids":
		return true
	case roberta && (strings.HasPrefix(name, "lm_head.") || strings.HasPrefix(name, "pooler.")):
		return true
	case !roberta && strings.HasPrefix(name, "cls."):
		return true
	}
	return false
}

func (e *encoder) numBlocks() int { return len(e.layers) }

func (e *encoder) close() {}

func (e *encoder) prepare(ctx *fwdCtx) error {
	if e.roberta {
		if max := int64(e.cfg.MaxPositionEmbeddings); ctx.t+e.padIdx+1 > max {
			return fmt.Errorf("%w: sequence length %d needs %d position embeddings, the model has %d (max_position_embeddings)",
				ErrInput, ctx.t, ctx.t+e.padIdx+1, max)
		}
	} else if max := int64(e.cfg.MaxPositionEmbeddings); ctx.t > max {
		return fmt.Errorf("%w: sequence length %d exceeds max_position_embeddings %d", ErrInput, ctx.t, max)
	}
	ctx.pad = paddingMask(ctx.own, ctx.t, ctx.in.AttentionMask)
	return ctx.own.err
}

// positionIDs are 0..T−1 for BERT; for RoBERTa padding_idx + cumsum(tokens) on tokens
// and padding_idx on padding (transformers' create_position_ids_from_input_ids).
func (e *encoder) positionIDs(s *scope, ctx *fwdCtx) *ts.Tensor {
	if !e.roberta {
		return s.view(s.arange(ctx.t, ctx.device), 1, ctx.t)
	}
	tok := s.toDType(s.neScalar(ctx.in.InputIDs, e.padIdx), gotch.Int64)
	if !s.ok(tok) {
		return nil
	}
	cum, err := tok.Cumsum(1, gotch.Int64, false)
	inc := s.mul(s.track(cum, err, "cumsum"), tok)
	return s.addInt(inc, e.padIdx)
}

func (e *encoder) embedTokens(s *scope, ctx *fwdCtx) *ts.Tensor {
	types := ctx.in.TokenTypeIDs
	if types == nil {
		z, err := ts.Zeros([]int64{ctx.b, ctx.t}, gotch.Int64, ctx.device)
		types = s.track(z, err, "token types")
	}
	h := s.add(s.embedding(e.wordEmb, ctx.in.InputIDs), s.embedding(e.typeEmb, types))
	h = s.add(h, s.embedding(e.posEmb, e.positionIDs(s, ctx)))
	return ctx.dropout(s, e.embNorm.forward(s, h), e.cfg.HiddenDropoutProb)
}

func (e *encoder) block(s *scope, ctx *fwdCtx, i int, h *ts.Tensor) *ts.Tensor {
	l, c := e.layers[i], e.cfg
	nh := int64(c.NumAttentionHeads)
	d := int64(c.HiddenSize) / nh
	split := func(x *ts.Tensor) *ts.Tensor { return s.transpose(s.view(x, ctx.b, ctx.t, nh, d), 1, 2) }
	q, k, v := split(l.query.forward(s, h)), split(l.key.forward(s, h)), split(l.value.forward(s, h))
	a := attend(s, ctx, q, k, v, ctx.pad, d, c.AttentionProbsDropoutProb)
	a = s.view(s.transpose(a, 1, 2), ctx.b, ctx.t, nh*d)
	a = ctx.dropout(s, l.attnOut.forward(s, a), c.HiddenDropoutProb)
	h1 := l.attnNorm.forward(s, s.add(a, h))
	act, _ := activation(c.HiddenAct) // validated with the config
	o := l.out.forward(s, s.act(act, l.inter.forward(s, h1)))
	o = ctx.dropout(s, o, c.HiddenDropoutProb)
	return l.outNorm.forward(s, s.add(o, h1))
}

// head pools the first token (<s> / [CLS]) and classifies it; its weights are float32
// master weights, so the hidden state is cast up first.
func (e *encoder) head(s *scope, ctx *fwdCtx, h *ts.Tensor) *ts.Tensor {
	p := e.cfg.classifierDropout()
	x := s.selectAt(h, 1, 0)
	if e.clsDense != nil && e.clsDense.Weight != nil {
		x = s.toDType(x, e.clsDense.Weight.DType())
	} else if e.pooler != nil && e.pooler.Weight != nil {
		x = s.toDType(x, e.pooler.Weight.DType())
	}
	if e.roberta {
		x = s.tanh(e.clsDense.forward(s, ctx.dropout(s, x, p)))
		return e.clsOut.forward(s, ctx.dropout(s, x, p))
	}
	pooled := s.tanh(e.pooler.forward(s, x))
	return e.classifier.forward(s, ctx.dropout(s, pooled, p))
}
