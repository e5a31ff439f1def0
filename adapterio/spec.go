package adapterio

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lrtrain/lrtrain/adapter"
)

// Sentinel errors; every error of this package wraps one of them.
var (
	// ErrNotAdapter reports a directory without adapter_config.json.
	ErrNotAdapter = errors.New("adapterio: not an adapter directory")
	// ErrConfig reports an adapter_config.json or tensor file that cannot be read.
	ErrConfig = errors.New("adapterio: invalid adapter")
	// ErrUnsupported reports a PEFT feature lrtrain's adapters do not have; the error
	// names the key.
	ErrUnsupported = errors.New("adapterio: unsupported adapter")
	// ErrMismatch reports an adapter that does not fit the model (modules, shapes).
	ErrMismatch = errors.New("adapterio: adapter does not fit the model")
)

// Spec returns the adapter.Spec of c: method lora for peft_type LORA, the lrlora
// block's method and φ settings for LRLORA; r, α (lora_alpha), rsLoRA, dropout and
// target_modules (a list as names, "all-linear", any other string as a regular
// expression). A target list that lrtrain cannot state (null, exclude_modules,
// layers_to_transform) is left empty: Open then names the modules of the tensor file.
//
// Keys that change what the adapter computes and that lrtrain's adapters do not have
// are refused with ErrUnsupported naming the key: use_dora, lora_bias, bias other than
// "none", fan_in_fan_out, rank_pattern / alpha_pattern, init_lora_weights that changed
// the base weights (pissa, olora, corda, loftq, lora_ga, mica), layer_replication,
// trainable_token_indices, target_parameters, alora_invocation_tokens, use_qalora,
// use_bdlora and arrow_config.
func (c Config) Spec() (adapter.Spec, error) {
	s := adapter.Default()
	switch c.PEFTType {
	case TypeLoRA:
		s.Method = adapter.LoRA
	case TypeLRLoRA:
		b := c.LRLoRA
		if b == nil {
			return s, fmt.Errorf("%w: peft_type %s without the lrlora block", ErrConfig, TypeLRLoRA)
		}
		if b.FormatVersion > LRLoRABlockVersion {
			return s, fmt.Errorf("%w: lrlora.format_version %d is newer than this lrtrain's (%d)", ErrUnsupported, b.FormatVersion, LRLoRABlockVersion)
		}
		s.Method = adapter.Method(b.Method)
		s.K, s.L, s.Grid, s.Basis, s.Share = b.K, b.L, adapter.Grid(b.Grid), adapter.Basis(b.Basis), adapter.Sharing(b.Share)
		s.Center, s.Residual = b.Center, b.Residual
		if s.Center && !s.Residual && s.Init == adapter.InitZero {
			// φ's initial amplitudes are overwritten by the file's; "small" only keeps
			// the spec valid (a centred φ starting at a = 0 would never get a gradient).
			s.Init = adapter.InitSmall
		}
		s.SineOmega = b.SineOmega
	default:
		return s, fmt.Errorf("%w: peft_type %q (lrtrain reads %s and %s)", ErrUnsupported, c.PEFTType, TypeLoRA, TypeLRLoRA)
	}
	if err := c.unsupported(); err != nil {
		return s, err
	}
	s.R, s.Alpha, s.RSLoRA, s.Dropout = c.R, c.LoraAlpha, c.UseRSLoRA, float64(c.LoraDropout)
	s.ModulesToSave = c.ModulesToSave
	s.TargetModules = adapter.Targets{}
	if c.ExcludeModules == nil && c.LayersToTransform == nil && !c.TargetModules.Null {
		switch tm := c.TargetModules; {
		case strings.EqualFold(tm.Regex, "all-linear"):
			s.TargetModules.AllLinear = true
		case tm.Regex != "":
			s.TargetModules.Regex = tm.Regex
		default:
			s.TargetModules.Names = append([]string(nil), tm.Names...)
		}
	}
	if ps := s.Problems(); len(ps) > 0 {
		var kept adapter.Problems
		for _, p := range ps {
			if p.Key != "adapter.target_modules" { // Open fills an empty list in
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			return s, fmt.Errorf("%w: %w", ErrConfig, kept)
		}
	}
	return s, nil
}

// unsupported names the first key whose value lrtrain's adapters cannot reproduce.
func (c Config) unsupported() error {
	bad := func(key string, v any, why string) error {
		return fmt.Errorf("%w: %s = %v: %s", ErrUnsupported, key, v, why)
	}
	switch {
	case c.UseDoRA:
		return bad("use_dora", true, "DoRA's magnitude vector is not an lrtrain adapter")
	case c.LoraBias:
		return bad("lora_bias", true, "lrtrain's lora_B has no bias")
	case c.Bias != "none" && c.Bias != "":
		return bad("bias", c.Bias, "lrtrain trains no base-layer biases")
	case c.FanInFanOut:
		return bad("fan_in_fan_out", true, "lrtrain's architectures store weights as (out, in)")
	case len(c.RankPattern) > 0:
		return bad("rank_pattern", c.RankPattern, "lrtrain adapters share one rank")
	case len(c.AlphaPattern) > 0:
		return bad("alpha_pattern", c.AlphaPattern, "lrtrain adapters share one alpha")
	case c.LayerReplication != nil:
		return bad("layer_replication", c.LayerReplication, "the adapted model has other layers than the base")
	case c.TrainableTokenIndices != nil:
		return bad("trainable_token_indices", c.TrainableTokenIndices, "embedding rows are not trained by lrtrain")
	case nonEmpty(c.TargetParameters):
		return bad("target_parameters", c.TargetParameters, "lrtrain adapts linear modules only")
	case c.AloraInvocationTokens != nil:
		return bad("alora_invocation_tokens", c.AloraInvocationTokens, "activated LoRA depends on the input tokens")
	case c.UseQALoRA:
		return bad("use_qalora", true, "lrtrain's base weights are not quantized")
	case c.UseBDLoRA != nil:
		return bad("use_bdlora", c.UseBDLoRA, "block-diagonal LoRA is not an lrtrain adapter")
	case c.ArrowConfig != nil:
		return bad("arrow_config", c.ArrowConfig, "Arrow routing is not an lrtrain adapter")
	}
	if s, ok := c.InitLoraWeights.(string); ok {
		for _, p := range []string{"pissa", "olora", "corda", "loftq", "lora_ga", "mica"} {
			if strings.HasPrefix(strings.ToLower(s), p) {
				return bad("init_lora_weights", s, "this initialisation changed the base weights or the layer, so the adapter needs the modified base model")
			}
		}
	}
	return nil
}

// nonEmpty reports a JSON value other than null, [] and {}.
func nonEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}
