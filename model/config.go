package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ConfigFileName is the name of a Hugging Face model's configuration file.
const ConfigFileName = "config.json"

// Config holds the fields of a Hugging Face config.json that the architectures of this
// package read. Fields absent from the file keep the defaults of the architecture's
// transformers config class (LlamaConfig, Qwen2Config, …); unknown fields are ignored
// and kept in Raw.
type Config struct {
	Architectures []string `json:"architectures"`
	ModelType     string   `json:"model_type"`
	TorchDType    string   `json:"torch_dtype"`

	VocabSize             int     `json:"vocab_size"`
	HiddenSize            int     `json:"hidden_size"`
	IntermediateSize      int     `json:"intermediate_size"`
	NumHiddenLayers       int     `json:"num_hidden_layers"`
	NumAttentionHeads     int     `json:"num_attention_heads"`
	NumKeyValueHeads      int     `json:"num_key_value_heads"` // 0: same as NumAttentionHeads
	HeadDim               int     `json:"head_dim"`            // 0: HiddenSize / NumAttentionHeads
	HiddenAct             string  `json:"hidden_act"`
	MaxPositionEmbeddings int     `json:"max_position_embeddings"`
	InitializerRange      float64 `json:"initializer_range"`
	TieWordEmbeddings     bool    `json:"tie_word_embeddings"`

	// Decoders.
	RMSNormEps          float64      `json:"rms_norm_eps"`
	RopeTheta           float64      `json:"rope_theta"`
	RopeScaling         *RopeScaling `json:"rope_scaling"`
	PartialRotaryFactor float64      `json:"partial_rotary_factor"` // Phi-3; 0 or 1: rotate the whole head
	AttentionBias       bool         `json:"attention_bias"`        // Llama: biases on q, k, v, o
	MLPBias             bool         `json:"mlp_bias"`              // Llama: biases on gate, up, down
	AttentionDropout    float64      `json:"attention_dropout"`
	SlidingWindow       *int         `json:"sliding_window"`     // Mistral, Phi-3, Qwen2 (with UseSlidingWindow)
	UseSlidingWindow    bool         `json:"use_sliding_window"` // Qwen2
	MaxWindowLayers     int          `json:"max_window_layers"`  // Qwen2: layers ≥ this one slide
	ResidPdrop          float64      `json:"resid_pdrop"`        // Phi-3
	EmbdPdrop           float64      `json:"embd_pdrop"`         // Phi-3

	BOSTokenID TokenIDs `json:"bos_token_id"`
	EOSTokenID TokenIDs `json:"eos_token_id"`
	PadTokenID TokenIDs `json:"pad_token_id"`

	// Encoders (BERT, RoBERTa).
	LayerNormEps              float64           `json:"layer_norm_eps"`
	TypeVocabSize             int               `json:"type_vocab_size"`
	HiddenDropoutProb         float64           `json:"hidden_dropout_prob"`
	AttentionProbsDropoutProb float64           `json:"attention_probs_dropout_prob"`
	ClassifierDropout         *float64          `json:"classifier_dropout"`
	PositionEmbeddingType     string            `json:"position_embedding_type"`
	ID2Label                  map[string]string `json:"id2label"`
	ProblemType               string            `json:"problem_type"`
	// NumLabels is not written by transformers (it is len(id2label)) but is accepted.
	NumLabels int `json:"num_labels"`

	// Path is the file the config was read from ("" when built in memory).
	Path string `json:"-"`
	// Raw is the file's JSON object as read.
	Raw json.RawMessage `json:"-"`
}

// RopeScaling is config.json's rope_scaling object.
type RopeScaling struct {
	RopeType string `json:"rope_type"`
	// Type is the older spelling of RopeType.
	Type                          string  `json:"type"`
	Factor                        float64 `json:"factor"`
	LowFreqFactor                 float64 `json:"low_freq_factor"`
	HighFreqFactor                float64 `json:"high_freq_factor"`
	OriginalMaxPositionEmbeddings int     `json:"original_max_position_embeddings"`
}

// Kind is the scaling type, "default" when neither rope_type nor type is set.
func (r *RopeScaling) Kind() string {
	switch {
	case r == nil:
		return "default"
	case r.RopeType != "":
		return r.RopeType
	case r.Type != "":
		return r.Type
	}
	return "default"
}

// TokenIDs is a token id field that config.json writes as an integer, a list (Llama 3's
// eos_token_id) or null.
type TokenIDs []int

// UnmarshalJSON accepts an integer, a list of integers or null.
func (t *TokenIDs) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*t = nil
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		var xs []int
		if err := json.Unmarshal(b, &xs); err != nil {
			return err
		}
		*t = xs
		return nil
	}
	var x int
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*t = TokenIDs{x}
	return nil
}

// First returns the first id, or false when there is none.
func (t TokenIDs) First() (int, bool) {
	if len(t) == 0 {
		return 0, false
	}
	return t[0], true
}

// ReadConfig reads dir/config.json (or the file itself when path names a file) with
// the defaults of the architecture named by its architectures[0], and validates it.
func ReadConfig(path string) (*Config, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, ConfigFileName)
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrConfig, path)
	}
	if err != nil {
		return nil, fmt.Errorf("model: read config: %w", err)
	}
	return ParseConfig(raw, path)
}

// ParseConfig parses the bytes of a config.json; path is only used in errors.
func ParseConfig(raw []byte, path string) (*Config, error) {
	var head struct {
		Architectures []string `json:"architectures"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	if len(head.Architectures) == 0 {
		return nil, fmt.Errorf("%w: %s has no \"architectures\" list", ErrConfig, path)
	}
	arch, err := LookupArchitecture(head.Architectures[0])
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	cfg := arch.Defaults()
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrConfig, path, err)
	}
	cfg.Path, cfg.Raw = path, json.RawMessage(raw)
	if err := cfg.finish(arch); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return &cfg, nil
}

// finish fills derived fields and validates the config for arch.
func (c *Config) finish(arch *Architecture) error {
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.NumLabels == 0 {
		c.NumLabels = len(c.ID2Label)
	}
	if c.NumLabels == 0 {
		c.NumLabels = 2 // transformers' PretrainedConfig default
	}
	positive := []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize},
		{"intermediate_size", c.IntermediateSize}, {"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads}, {"num_key_value_heads", c.NumKeyValueHeads},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("%w: %s = %d, need > 0", ErrConfig, p.name, p.v)
		}
	}
	if c.HeadDim == 0 {
		if c.HiddenSize%c.NumAttentionHeads != 0 {
			return fmt.Errorf("%w: hidden_size %d is not a multiple of num_attention_heads %d",
				ErrConfig, c.HiddenSize, c.NumAttentionHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumAttentionHeads
	}
	if c.HeadDim <= 0 {
		return fmt.Errorf("%w: head_dim = %d, need > 0", ErrConfig, c.HeadDim)
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fmt.Errorf("%w: num_attention_heads %d is not a multiple of num_key_value_heads %d",
			ErrConfig, c.NumAttentionHeads, c.NumKeyValueHeads)
	}
	if _, err := activation(c.HiddenAct); err != nil {
		return err
	}
	if arch.Task == SequenceClassification && c.NumLabels < 1 {
		return fmt.Errorf("%w: num_labels = %d", ErrConfig, c.NumLabels)
	}
	if arch.validate != nil {
		return arch.validate(c)
	}
	return nil
}

// validateDecoder checks the settings shared by the decoder architectures.
func validateDecoder(c *Config) error {
	if c.HeadDim%2 != 0 {
		return fmt.Errorf("%w: head_dim %d is odd; rotary embeddings need an even size", ErrConfig, c.HeadDim)
	}
	if !(c.RMSNormEps > 0) {
		return fmt.Errorf("%w: rms_norm_eps = %v, need > 0", ErrConfig, c.RMSNormEps)
	}
	if !(c.RopeTheta > 0) {
		return fmt.Errorf("%w: rope_theta = %v, need > 0", ErrConfig, c.RopeTheta)
	}
	if f := c.PartialRotaryFactor; f < 0 || f > 1 {
		return fmt.Errorf("%w: partial_rotary_factor = %v, need 0 < f ≤ 1", ErrConfig, f)
	}
	if c.SlidingWindow != nil && *c.SlidingWindow <= 0 && c.slidingEnabled() {
		return fmt.Errorf("%w: sliding_window = %d, need > 0", ErrConfig, *c.SlidingWindow)
	}
	if _, err := newRopeFrequencies(c); err != nil {
		return err
	}
	return nil
}

// slidingEnabled reports whether any layer uses the sliding window.
func (c *Config) slidingEnabled() bool {
	if c.SlidingWindow == nil {
		return false
	}
	if c.ModelType == "qwen2" {
		return c.UseSlidingWindow
	}
	return true
}

// layerWindow is the sliding window of layer i, 0 for full attention. Qwen2 slides only
// with use_sliding_window and only from layer max_window_layers on (transformers'
// layer_types); Mistral and Phi-3 slide in every layer when sliding_window is set.
func (c *Config) layerWindow(i int) int {
	if !c.slidingEnabled() {
		return 0
	}
	if c.ModelType == "qwen2" && i < c.MaxWindowLayers {
		return 0
	}
	return *c.SlidingWindow
}

// validateEncoder checks the settings of the BERT-like encoders.
func validateEncoder(c *Config) error {
	if !(c.LayerNormEps > 0) {
		return fmt.Errorf("%w: layer_norm_eps = %v, need > 0", ErrConfig, c.LayerNormEps)
	}
	if c.NumKeyValueHeads != c.NumAttentionHeads {
		return fmt.Errorf("%w: encoders have no grouped-query attention (num_key_value_heads %d)", ErrConfig, c.NumKeyValueHeads)
	}
	if t := c.PositionEmbeddingType; t != "" && t != "absolute" {
		return fmt.Errorf("%w: position_embedding_type %q (only \"absolute\")", ErrUnsupported, t)
	}
	if c.TypeVocabSize <= 0 || c.MaxPositionEmbeddings <= 0 {
		return fmt.Errorf("%w: type_vocab_size %d, max_position_embeddings %d, need > 0",
			ErrConfig, c.TypeVocabSize, c.MaxPositionEmbeddings)
	}
	switch c.ProblemType {
	case "", "regression", "single_label_classification":
	default:
		return fmt.Errorf("%w: problem_type %q", ErrUnsupported, c.ProblemType)
	}
	return nil
}

// Regression reports whether a classifier predicts one score trained with MSE (num_labels
// == 1, as for STS-B, or problem_type "regression") instead of classes.
func (c *Config) Regression() bool {
	return c.ProblemType == "regression" || (c.ProblemType == "" && c.NumLabels == 1)
}

// classifierDropout is classifier_dropout, or hidden_dropout_prob when it is null.
func (c *Config) classifierDropout() float64 {
	if c.ClassifierDropout != nil {
		return *c.ClassifierDropout
	}
	return c.HiddenDropoutProb
}

// activation names a supported hidden_act.
func activation(name string) (string, error) {
	switch strings.ToLower(name) {
	case "silu", "swish":
		return "silu", nil
	case "gelu":
		return "gelu", nil
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		return "gelu_tanh", nil
	case "relu":
		return "relu", nil
	}
	return "", fmt.Errorf("%w: hidden_act %q (want silu, gelu, gelu_new, gelu_pytorch_tanh or relu)", ErrUnsupported, name)
}
