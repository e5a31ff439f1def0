// Package flops counts the floating-point operations of one training step of a
// Llama-style decoder with plain LoRA (unmerged) or LR-LoRA adapters, and from them the
// lower bound of LR-LoRA's step time over LoRA's.
//
// What is counted (one multiply-add = 2 FLOPs; N = batch × sequence tokens):
//
//   - every matrix product of the step: the projections' forward, their ∂x where the
//     input needs a gradient, attention's QKᵀ and softmax·V with their gradients (the
//     full T×T: libtorch's CPU attention does not skip the causal half), the LM head's
//     forward and ∂x;
//   - plain LoRA, per adapted d_in→d_out module: frozen x·W0ᵀ (2N·d_in·d_out) and its ∂x
//     (the same), adapters x·Aᵀ and ·Bᵀ forward and their three products each backward:
//     6N·r·(d_in + d_out);
//   - LR-LoRA, per adapted module: M = B·A (2·d_out·r·d_in), φ's K basis terms per entry
//     of M forward and backward (PhiForwardPerTerm, PhiBackwardPerTerm), or with
//     Config.PhiTabulated its table lookups (PhiTabulatedForward, PhiTabulatedBackward), the merged
//     x·W_effᵀ, its ∂x, the gradient of ΔW, Gᵀ·x (2N·d_out·d_in: the GEMM plain LoRA does
//     not do), and ∂B = ∂M·Aᵀ, ∂A = Bᵀ·∂M (2·d_out·r·d_in each).
//
// Not counted, on either side: norms, rotary embeddings, SiLU, softmax and the other
// token-wise element passes, the loss, the optimizer and the d_out×d_in additions and
// scalings of the merged path. They are O(N·d) or O(d_out·d_in) next to O(N·d²) and
// O(K·d_out·d_in); leaving the shared ones out makes the bound slightly higher than
// with them.
//
// The bound: if both methods ran their counted FLOPs at the same rate and nothing else
// took time, LR-LoRA's step would take FLOPs(LR-LoRA)/FLOPs(LoRA) times LoRA's. It is
// not a lower bound of the measured ratio: the work left out above takes about the same
// time in both steps and pulls the measured ratio towards 1 (at equal rates it lies
// between 1 and the bound), and LoRA's rank-r products, counted in full, run far below
// the large GEMMs' rate (a few r columns through a T×d operand: memory traffic and call
// overhead). A measured ratio above it is LR-LoRA work running below LoRA's rate (φ's
// kernels above all) or time an implementation could still recover.
package flops

import (
	"encoding/json"
	"fmt"
	"os"
)

// PhiForwardPerTerm and PhiBackwardPerTerm are the FLOPs assumed for one basis term
// k of one entry of M, counting sin, cos and a reciprocal as one operation each (so
// this is a low count: a vectorised sin is ~10–20 instructions).
//
// Forward: t = s_k·(x − g_k) (2), sin(πt) (2: the multiply by π and the sine), the
// reciprocal of πt and its product (2), y += a_k·f (2): 8.
// Backward: t again (2), sin, cos, reciprocal (3 + 1 for πt), f = sin·rcp (1),
// f′ = (cos − f)·rcp (2), ∂x += a_k·s_k·f′·G (2), ∂a_k += G·f (2), ∂u_k += G·(x − g_k)·f′
// (3): 16.
const (
	PhiForwardPerTerm  = 8
	PhiBackwardPerTerm = 16
)

// PhiTabulatedForward and PhiTabulatedBackward are the FLOPs per entry of M of φ's
// tabulated float32 path (phiop: a cubic table of φ and φ′ over M's range, used on a
// large M instead of the K terms; Config.PhiTabulated), with the float conversions
// and the interval lookup as one operation each.
//
// Forward: u = (x − lo)·(1/h) (2), interval and t = u − j (2), the cubic by Horner
// (6), − offset (1): 11.
// Backward: u, interval, t (4), φ′'s cubic (6), ∂x = G·φ′ (1), t², t³ (2), G·t, G·t²,
// G·t³ (3), the four moment sums (4): 20.
// The K-term work left on the grid's nodes, three passes of (N + 3)·K terms in
// float64 for N intervals, is not counted: phiop takes the table only where that
// work is a small part of the step's φ (its cost model), and N is data-dependent.
const (
	PhiTabulatedForward  = 11
	PhiTabulatedBackward = 20
)

// Module names of a Llama decoder layer, in the order of the layer's data flow.
var Modules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// Config is a Llama-style model with its adapters.
type Config struct {
	Hidden, Intermediate, Layers, Heads, KVHeads, Vocab int
	R, K                                                int             // adapter rank; φ's basis terms (LR-LoRA)
	PhiTabulated                                        bool            // φ runs tabulated: per entry PhiTabulated*, not K terms
	Adapted                                             map[string]bool // adapted module names (keys of Modules)
}

// Batch is the tokens of one step: Accum micro-batches (0 means 1) of B sequences of T
// tokens. The token-proportional work is counted per micro-batch; LR-LoRA's per-step
// work (B·A, φ, ∂B, ∂A) once per step, as lrtrain runs it (ΔW formed once per
// optimizer step, model.delta_per_step).
type Batch struct{ B, T, Accum int }

// micro is the number of micro-batches.
func (b Batch) micro() float64 { return float64(max(b.Accum, 1)) }

// Method is what the adapted modules train.
type Method int

const (
	LoRA   Method = iota // unmerged: x·W0ᵀ + s·(x·Aᵀ)·Bᵀ
	LRLoRA               // merged: x·(W0 + s·φ(B·A))ᵀ
)

// Count is one step's FLOPs, by part.
type Count struct {
	Projections float64 // the seven projections: frozen products, LoRA's adapter products, LR-LoRA's merged ones
	Adapter     float64 // LR-LoRA's B·A, ∂B, ∂A (d_out×d_in sized); 0 for LoRA (its adapter products are in Projections)
	Phi         float64 // φ forward + backward (LR-LoRA)
	DeltaGrad   float64 // Gᵀ·x, the d_out×d_in gradient of ΔW (LR-LoRA)
	Attention   float64 // QKᵀ, softmax·V and their gradients
	Head        float64 // LM head forward and ∂x
}

// Total is the step's FLOPs.
func (c Count) Total() float64 {
	return c.Projections + c.Adapter + c.Phi + c.DeltaGrad + c.Attention + c.Head
}

// dims returns d_in, d_out of a module.
func (c Config) dims(module string) (din, dout int) {
	hd := c.Hidden / c.Heads
	switch module {
	case "q_proj":
		return c.Hidden, c.Heads * hd
	case "k_proj", "v_proj":
		return c.Hidden, c.KVHeads * hd
	case "o_proj":
		return c.Heads * hd, c.Hidden
	case "gate_proj", "up_proj":
		return c.Hidden, c.Intermediate
	default: // down_proj
		return c.Intermediate, c.Hidden
	}
}

func (c Config) validate() error {
	if c.Hidden <= 0 || c.Intermediate <= 0 || c.Layers <= 0 || c.Heads <= 0 || c.KVHeads <= 0 || c.Vocab <= 0 {
		return fmt.Errorf("flops: every size must be positive: %+v", c)
	}
	if c.Hidden%c.Heads != 0 || c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("flops: hidden %d, heads %d, KV heads %d do not divide", c.Hidden, c.Heads, c.KVHeads)
	}
	for m := range c.Adapted {
		if _, ok := moduleIndex(m); !ok {
			return fmt.Errorf("flops: unknown module %q (want one of %v)", m, Modules)
		}
	}
	return nil
}

func moduleIndex(m string) (int, bool) {
	for i, n := range Modules {
		if n == m {
			return i, true
		}
	}
	return 0, false
}

// Step counts one training step (forward + backward over every micro-batch) of method
// on batch.
//
// Whether an input needs a gradient follows autograd: the embedding is frozen, so the
// first layer's q, k, v inputs need none (no ∂x there, on either side), and a tensor
// needs one once any adapted module lies upstream of it.
func Step(c Config, b Batch, m Method) (Count, error) {
	if err := c.validate(); err != nil {
		return Count{}, err
	}
	if b.B <= 0 || b.T <= 0 || b.Accum < 0 {
		return Count{}, fmt.Errorf("flops: batch %d×%d (×%d micro-batches) must be positive", b.B, b.T, b.Accum)
	}
	n := float64(b.B * b.T)
	r, k := float64(c.R), float64(c.K)
	var cnt Count
	// linear adds one projection; in says whether its input needs a gradient, and it
	// returns whether its output does.
	linear := func(module string, in bool) bool {
		di, do := c.dims(module)
		din, dout := float64(di), float64(do)
		adapted := c.Adapted[module]
		cnt.Projections += 2 * n * din * dout // forward, x·W0ᵀ or x·W_effᵀ
		if in {
			cnt.Projections += 2 * n * din * dout // ∂x through W0 or W_eff
		}
		switch {
		case !adapted:
		case m == LoRA:
			cnt.Projections += 2*n*din*r + 2*n*r*dout  // x·Aᵀ, ·Bᵀ
			cnt.Projections += 2*n*dout*r + 2*n*dout*r // ∂h = G·B, ∂B = Gᵀ·h
			cnt.Projections += 2 * n * r * din         // ∂A = ∂hᵀ·x
			if in {
				cnt.Projections += 2 * n * r * din // ∂x += ∂h·A
			}
		default:
			cnt.Adapter += 3 * 2 * dout * r * din // B·A, ∂M·Aᵀ, Bᵀ·∂M
			if c.PhiTabulated {
				cnt.Phi += dout * din * (PhiTabulatedForward + PhiTabulatedBackward)
			} else {
				cnt.Phi += k * dout * din * (PhiForwardPerTerm + PhiBackwardPerTerm)
			}
			cnt.DeltaGrad += 2 * n * dout * din
		}
		return in || adapted
	}
	hd := float64(c.Hidden / c.Heads)
	attnPart := 2 * float64(b.B) * float64(c.Heads) * float64(b.T) * float64(b.T) * hd // one T×T×head_dim product
	h := false                                                                         // the residual stream needs a gradient
	for range c.Layers {
		q, kk, v := linear("q_proj", h), linear("k_proj", h), linear("v_proj", h)
		cnt.Attention += 2 * attnPart // S = QKᵀ, O = P·V
		if q || kk {
			cnt.Attention += attnPart // ∂P = ∂O·Vᵀ
		}
		if v {
			cnt.Attention += attnPart // ∂V = Pᵀ·∂O
		}
		if q {
			cnt.Attention += attnPart // ∂Q = ∂S·K
		}
		if kk {
			cnt.Attention += attnPart // ∂K = ∂Sᵀ·Q
		}
		h = linear("o_proj", q || kk || v) || h
		g, u := linear("gate_proj", h), linear("up_proj", h)
		h = linear("down_proj", g || u) || h
	}
	cnt.Head = 2 * n * float64(c.Hidden) * float64(c.Vocab)
	if h {
		cnt.Head *= 2 // ∂x of the head (frozen: no weight gradient)
	}
	a := b.micro() // the token-proportional parts run once per micro-batch
	cnt.Projections, cnt.DeltaGrad, cnt.Attention, cnt.Head = a*cnt.Projections, a*cnt.DeltaGrad, a*cnt.Attention, a*cnt.Head
	return cnt, nil
}

// Bound is LR-LoRA's step time over LoRA's if both ran their counted FLOPs at the same
// rate and nothing else took time: FLOPs(LR-LoRA) / FLOPs(LoRA) (see the package doc for
// why a measured ratio can fall below it).
func Bound(c Config, b Batch) (float64, error) {
	lo, err := Step(c, b, LoRA)
	if err != nil {
		return 0, err
	}
	lr, err := Step(c, b, LRLoRA)
	if err != nil {
		return 0, err
	}
	return lr.Total() / lo.Total(), nil
}

// FromHF reads a transformers config.json (Llama-style keys) into a Config with
// adapters of rank r and K basis terms on the named modules.
func FromHF(path string, r, k int, adapted []string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("flops: %w", err)
	}
	var hf struct {
		Hidden       int `json:"hidden_size"`
		Intermediate int `json:"intermediate_size"`
		Layers       int `json:"num_hidden_layers"`
		Heads        int `json:"num_attention_heads"`
		KVHeads      int `json:"num_key_value_heads"`
		Vocab        int `json:"vocab_size"`
	}
	if err := json.Unmarshal(raw, &hf); err != nil {
		return Config{}, fmt.Errorf("flops: %s: %w", path, err)
	}
	if hf.KVHeads == 0 {
		hf.KVHeads = hf.Heads // transformers' default: no grouped-query attention
	}
	c := Config{Hidden: hf.Hidden, Intermediate: hf.Intermediate, Layers: hf.Layers, Heads: hf.Heads,
		KVHeads: hf.KVHeads, Vocab: hf.Vocab, R: r, K: k, Adapted: map[string]bool{}}
	for _, m := range adapted {
		c.Adapted[m] = true
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
