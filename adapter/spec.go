package adapter

import (
	"math"
	"reflect"
	"strings"
)

// Spec is the adapter section of a run: which method, how large, which layers, and φ.
// The yaml tags are the keys of the config file's adapter section (package config
// decodes straight into a Spec; the alias tags are names other trainers use, which
// its messages suggest); the json tags are the keys a checkpoint manifest records
// (package train). Phi is embedded, so its keys sit flat in the JSON form (k, l, grid,
// …) and under phi in the YAML form.
//
// A new setting is one field here (or in Phi) with its tags, its value in Default and
// its check in Problems; config, train's manifest and resume rules pick it up from
// the tags. A setting shapes the adapter (a checkpoint resumes only with the same
// value, see ShapingKeys) unless its field is tagged shaping:"false".
type Spec struct {
	// Method is lrlora, lora or sinelora.
	Method Method `yaml:"method" json:"method" alias:"peft_type,adapter_type,type"`
	// R is the rank r ≥ 1.
	R int `yaml:"r" json:"r" alias:"rank,lora_r"`
	// Alpha is α; 0 means 2r (Resolved fills it in).
	Alpha float64 `yaml:"alpha" json:"alpha" alias:"lora_alpha"`
	// RSLoRA scales by α/√r instead of α/r (rsLoRA, Kalajdzievski 2023).
	RSLoRA bool `yaml:"rslora" json:"rslora" alias:"use_rslora"`
	// Dropout on the adapter input, in [0, 1); 0 keeps the merged fast path. It does not
	// shape the adapter, so a resumed run may change it.
	Dropout float64 `yaml:"dropout" json:"dropout" alias:"lora_dropout" shaping:"false"`
	// TargetModules selects the adapted linear layers (see Targets).
	TargetModules Targets `yaml:"target_modules" json:"target_modules" alias:"targets,lora_target_modules,target"`
	// ModulesToSave are modules trained in full and saved with the adapters (e.g. a
	// classification head), matched like target module names. The trainer always
	// trains classification heads and does not record this list.
	ModulesToSave []string `yaml:"modules_to_save" json:"-" alias:"trainable_modules"`
	// Phi is the transfer function of lrlora adapters.
	Phi `yaml:"phi" alias:"transfer"`
	// SineOmega is SineLoRA's frequency ω (method sinelora).
	SineOmega float64 `yaml:"sine_omega" json:"sine_omega" alias:"omega,sinelora_omega"`
}

// Phi configures φ(x) = Σ_k a_k f(c·b_k·(x − g_k)) of lrlora adapters.
type Phi struct {
	// K is the number of basis functions (grid points), K ≥ 2.
	K int `yaml:"k" json:"k" alias:"num_basis,grid_size,num_grid"`
	// L is the half-width of the grid interval [−L, L], L > 0.
	L float64 `yaml:"l" json:"l" alias:"grid_range,half_width,range"`
	// Grid places the grid points: uniform or chebyshev.
	Grid Grid `yaml:"grid" json:"grid" alias:"grid_type"`
	// Basis is f: sinc, gaussian or bspline.
	Basis Basis `yaml:"basis" json:"basis" alias:"basis_function,kernel"`
	// Share is the cross-layer sharing of φ's tensors: none, grid, bandwidth or all.
	Share Sharing `yaml:"share" json:"share" alias:"sharing,shared"`
	// Center subtracts φ(0): ΔW = s·(φ(M) − φ(0)), so φ adds no constant to every
	// entry of W (docs/method.md §10).
	Center bool `yaml:"center" json:"center" alias:"centre,centered,centred"`
	// Residual is φ(x) = x + Σ_k a_k (f(c·b_k·(x − g_k)) − f(−c·b_k·g_k)): centred, and
	// exactly LoRA while a = 0 (docs/method.md §10).
	Residual bool `yaml:"residual" json:"residual" alias:"identity_term,skip"`
	// Init is a's initial value: zero (the paper's), small (a_k = InitValue) or
	// identity (a fitted so that φ ≈ x on [−L, L] at b = 1). "" (a manifest written
	// before the key existed) means zero.
	Init PhiInit `yaml:"init" json:"init" alias:"amplitude_init,init_mode" shaping:"false"`
	// InitValue is a_k under init small (the paper's small-start uses 0.1 or 0.01).
	// 0 (a manifest written before the key existed) means DefaultInitValue.
	InitValue float64 `yaml:"init_value" json:"init_value" alias:"small_value,init_scale" shaping:"false"`
	// LRScale multiplies the learning rate of a and β (their gradients sum over
	// d_out·d_in entries). 0 (a manifest written before the key existed) means 1.
	LRScale float64 `yaml:"lr_scale" json:"lr_scale" alias:"phi_lr_scale,lr_multiplier,lr_ratio" shaping:"false"`
	// FixedBandwidth keeps β at its initial value (b = 1): β is a buffer, not a
	// trained parameter (the paper's fixed- vs learned-bandwidth ablation). It shapes
	// the adapter because it changes the trainable list; omitted from JSON when false,
	// so manifests written before the key existed read as learned bandwidth.
	FixedBandwidth bool `yaml:"fixed_bandwidth" json:"fixed_bandwidth,omitempty" alias:"fix_bandwidth,freeze_bandwidth"`
}

// LLMTargetModules are the paper's adapted modules for decoder LLMs (q,k,v,o,gate,up,down).
var LLMTargetModules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// EncoderTargetModules are the paper's adapted modules for RoBERTa/BERT: query, key,
// value, attention output, intermediate and output (PEFT suffix matching).
var EncoderTargetModules = []string{"query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"}

// Default returns the paper's adapter (docs/method.md §1): LR-LoRA of rank 8 on the
// LLM target modules, α = 2r (left 0 until Resolved), no rsLoRA, no dropout, K = 50
// on [−3, 3], uniform grid, sinc basis, no sharing, φ neither centred nor residual,
// a = 0 at init (0.01 if small is chosen), φ's learning rate that of A and B, and
// SineLoRA's ω = 200 (Ji et al. 2025, for LLM adapters). This is the one place the
// defaults are written.
func Default() Spec {
	return Spec{
		Method:        LRLoRA,
		R:             8,
		TargetModules: Targets{Names: append([]string(nil), LLMTargetModules...)},
		Phi: Phi{K: 50, L: 3, Grid: Uniform, Basis: Sinc, Share: ShareNone,
			Init: InitZero, InitValue: DefaultInitValue, LRScale: 1},
		SineOmega: 200,
	}
}

// Resolved fills the values that depend on other keys: α = 2r when α is 0, and φ's
// keys that a manifest written before they existed leaves at zero (Phi.Resolved).
func (s Spec) Resolved() Spec {
	if s.Alpha == 0 {
		s.Alpha = 2 * float64(s.R)
	}
	s.Phi = s.Phi.Resolved()
	return s
}

// Scaling is ΔW's scale s = α/r, or α/√r with rsLoRA (α = 2r when 0); NaN for r < 1.
func (s Spec) Scaling() float64 {
	if s.R < 1 {
		return math.NaN()
	}
	alpha := s.Resolved().Alpha
	if s.RSLoRA {
		return alpha / math.Sqrt(float64(s.R))
	}
	return alpha / float64(s.R)
}

// GridPoints returns g_1 < … < g_K; an invalid Phi is an error naming the key.
func (p Phi) GridPoints() ([]float64, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	g := make([]float64, p.K)
	for k := range g {
		switch p.Grid {
		case Uniform:
			g[k] = -p.L + 2*p.L*float64(k)/float64(p.K-1)
		case Chebyshev:
			g[k] = -p.L * math.Cos(float64(2*k+1)*math.Pi/float64(2*p.K))
		}
	}
	return g, nil
}

// BasisScale is the constant c inside the basis, f(c·b_k·(x − g_k)) (docs/method.md
// §2). Sinc and Gaussian take the formulas as written (c = 1). Cubic B-splines live
// on the grid, so their argument is measured in grid spacings: c = 1/h with h the mean
// spacing (g_K − g_1)/(K − 1), which is 2L/(K − 1) for the uniform grid.
func (p Phi) BasisScale() (float64, error) {
	g, err := p.GridPoints()
	if err != nil {
		return 0, err
	}
	if p.Basis != BSpline {
		return 1, nil
	}
	h := (g[len(g)-1] - g[0]) / float64(len(g)-1)
	return 1 / h, nil
}

// ShapingKeys are the JSON keys of the settings that decide what the adapters are (a
// checkpoint resumes only with the same values): every recorded key whose field is not
// tagged shaping:"false", Phi's included.
func ShapingKeys() []string { return jsonKeys(reflect.TypeOf(Spec{})) }

func jsonKeys(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case f.Anonymous && key == "":
			out = append(out, jsonKeys(f.Type)...)
		case key != "-" && key != "" && f.Tag.Get("shaping") != "false":
			out = append(out, key)
		}
	}
	return out
}
