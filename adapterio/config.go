package adapterio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File names of an adapter directory, as PEFT's save_pretrained writes them.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
	// PickleWeightsFile is the older torch.save form, which lrtrain does not read.
	PickleWeightsFile = "adapter_model.bin"
)

// Prefix starts every tensor name in WeightsFile: the PEFT wrapper's path to the
// base model (base_model.model.<module path>.lora_A.weight).
const Prefix = "base_model.model."

// PEFTVersion is the PEFT release whose LoraConfig fields and defaults Config and
// DefaultConfig follow; lrtrain writes it as peft_version.
const PEFTVersion = "0.20.0"

// peft_type values: LORA is PEFT's own; LRLORA marks an lrtrain adapter with φ
// (lrlora or sinelora), which PEFT refuses because it has no config class of that name.
const (
	TypeLoRA   = "LORA"
	TypeLRLoRA = "LRLORA"
)

// Config is adapter_config.json: every key PEFT's LoraConfig (PEFTVersion) writes,
// under its own name, plus lrtrain's "lrlora" block (absent for plain LoRA, so that
// the file holds exactly PEFT's keys). Keys lrtrain never sets keep PEFT's defaults
// (DefaultConfig), as any-typed fields where PEFT allows several JSON types.
type Config struct {
	// Keys of PeftConfig.
	PEFTType            string `json:"peft_type"`
	TaskType            string `json:"task_type"`
	BaseModelNameOrPath string `json:"base_model_name_or_path"`
	Revision            any    `json:"revision"`
	InferenceMode       bool   `json:"inference_mode"`
	AutoMapping         any    `json:"auto_mapping"`
	PEFTVersion         string `json:"peft_version"`

	// Keys of LoraConfig.
	R                     int            `json:"r"`
	TargetModules         TargetModules  `json:"target_modules"`
	ExcludeModules        any            `json:"exclude_modules"`
	LoraAlpha             float64        `json:"lora_alpha"`
	LoraDropout           Float          `json:"lora_dropout"`
	FanInFanOut           bool           `json:"fan_in_fan_out"`
	Bias                  string         `json:"bias"`
	UseRSLoRA             bool           `json:"use_rslora"`
	ModulesToSave         []string       `json:"modules_to_save"`
	InitLoraWeights       any            `json:"init_lora_weights"`
	LayersToTransform     any            `json:"layers_to_transform"`
	LayersPattern         any            `json:"layers_pattern"`
	RankPattern           map[string]any `json:"rank_pattern"`
	AlphaPattern          map[string]any `json:"alpha_pattern"`
	MegatronConfig        any            `json:"megatron_config"`
	MegatronCore          any            `json:"megatron_core"`
	TrainableTokenIndices any            `json:"trainable_token_indices"`
	LoftQConfig           map[string]any `json:"loftq_config"`
	EvaConfig             any            `json:"eva_config"`
	CordaConfig           any            `json:"corda_config"`
	LoraGAConfig          any            `json:"lora_ga_config"`
	UseDoRA               bool           `json:"use_dora"`
	VeloraConfig          any            `json:"velora_config"`
	AloraInvocationTokens any            `json:"alora_invocation_tokens"`
	UseQALoRA             bool           `json:"use_qalora"`
	QALoRAGroupSize       int            `json:"qalora_group_size"`
	MonteCLoRAConfig      any            `json:"monteclora_config"`
	LayerReplication      any            `json:"layer_replication"`
	LoraBias              bool           `json:"lora_bias"`
	TargetParameters      any            `json:"target_parameters"`
	UseBDLoRA             any            `json:"use_bdlora"`
	ArrowConfig           any            `json:"arrow_config"`
	EnsureWeightTying     bool           `json:"ensure_weight_tying"`

	// LRLoRA is lrtrain's block: φ's settings, which PEFT has no key for.
	LRLoRA *LRLoRABlock `json:"lrlora,omitempty"`
}

// LRLoRABlockVersion is the version of the "lrlora" block.
const LRLoRABlockVersion = 1

// LRLoRABlock is lrtrain's part of adapter_config.json for adapters with φ. φ's
// tensors are <module>.phi.amplitude, <module>.phi.bandwidth_raw (β; b = softplus(β))
// and <module>.phi.grid under Prefix, or phi_shared.* once under cross-layer sharing;
// their names hold no "lora_", so no PEFT key rule touches them.
type LRLoRABlock struct {
	FormatVersion int      `json:"format_version"`
	Method        string   `json:"method"` // lrlora or sinelora (lora in files of older lrtrain versions)
	K             int      `json:"K"`
	L             float64  `json:"L"`
	Grid          string   `json:"grid"`
	Basis         string   `json:"basis"`
	Share         string   `json:"share"`
	Center        bool     `json:"center"`   // ΔW = s·(φ(M) − φ(0)); false in files before it existed
	Residual      bool     `json:"residual"` // φ(x) = x + Σ a_k(…); false in files before it existed
	SineOmega     float64  `json:"sine_omega"`
	Scaling       float64  `json:"scaling"` // s = α/r or α/√r, for readers
	Modules       []string `json:"modules"` // the adapted module paths, in module order
}

// DefaultConfig is a LoraConfig with PEFT's defaults (PEFTVersion) and peft_type LORA.
// ReadConfig starts from it, so a key a file leaves out has PEFT's default.
func DefaultConfig() Config {
	return Config{
		PEFTType: TypeLoRA, PEFTVersion: PEFTVersion, TargetModules: TargetModules{Null: true},
		R: 8, LoraAlpha: 8, Bias: "none", InitLoraWeights: true,
		RankPattern: map[string]any{}, AlphaPattern: map[string]any{}, LoftQConfig: map[string]any{},
		MegatronCore: "megatron.core", QALoRAGroupSize: 16,
	}
}

// TargetModules is LoraConfig's target_modules: a list of names (PEFT's suffix rule),
// one string (a regular expression that must match the whole module path, or
// "all-linear"), or null (PEFT's per-architecture default).
type TargetModules struct {
	Names []string
	Regex string // the string form; "all-linear" included
	Null  bool
}

// MarshalJSON writes a list, a string or null.
func (t TargetModules) MarshalJSON() ([]byte, error) {
	switch {
	case t.Null:
		return []byte("null"), nil
	case t.Regex != "":
		return json.Marshal(t.Regex)
	}
	return json.Marshal(append([]string{}, t.Names...))
}

// UnmarshalJSON reads a list of strings, a string or null.
func (t *TargetModules) UnmarshalJSON(b []byte) error {
	*t = TargetModules{}
	switch s := bytes.TrimSpace(b); {
	case bytes.Equal(s, []byte("null")):
		t.Null = true
		return nil
	case len(s) > 0 && s[0] == '"':
		return json.Unmarshal(s, &t.Regex)
	}
	if err := json.Unmarshal(b, &t.Names); err != nil {
		return fmt.Errorf("target_modules: want a list of names, a string or null: %w", err)
	}
	return nil
}

// Keys returns the top-level keys of c's JSON form, sorted.
func (c Config) Keys() ([]string, error) {
	m, err := c.object()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// JSON is c as PEFT writes adapter_config.json: an object with sorted keys, indented
// by two spaces, ending in a newline.
func (c Config) JSON() ([]byte, error) {
	m, err := c.object()
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil { // maps are written with sorted keys
		return nil, fmt.Errorf("adapterio: encode %s: %w", ConfigFile, err)
	}
	return buf.Bytes(), nil
}

func (c Config) object() (map[string]json.RawMessage, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("adapterio: encode %s: %w", ConfigFile, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("adapterio: encode %s: %w", ConfigFile, err)
	}
	return m, nil
}

// Float is a JSON number written as Python writes a float: with a decimal point
// (0.0, 0.05), so that a float field of PEFT's reads back as a Python float.
type Float float64

// MarshalJSON writes f with the shortest exact digits and a decimal point.
func (f Float) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(float64(f))
	if err != nil {
		return nil, err
	}
	if !bytes.ContainsAny(b, ".eE") {
		b = append(b, ".0"...)
	}
	return b, nil
}

// ReadConfig reads dir/adapter_config.json over DefaultConfig. Keys it does not know
// (a newer PEFT's) are returned in unknown, sorted; they are otherwise ignored, as an
// older PEFT ignores them.
func ReadConfig(dir string) (c Config, unknown []string, err error) {
	path := filepath.Join(dir, ConfigFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil, fmt.Errorf("%w: %s has no %s", ErrNotAdapter, dir, ConfigFile)
	}
	if err != nil {
		return c, nil, fmt.Errorf("adapterio: %w", err)
	}
	c = DefaultConfig()
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return c, nil, fmt.Errorf("%w: %s: %w", ErrConfig, path, err)
	}
	known, err := DefaultConfig().object()
	if err != nil {
		return c, nil, err
	}
	for k := range all {
		if _, ok := known[k]; !ok && k != "lrlora" {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	if strings.TrimSpace(c.PEFTType) == "" {
		return c, unknown, fmt.Errorf("%w: %s: peft_type is missing", ErrConfig, path)
	}
	return c, unknown, nil
}
