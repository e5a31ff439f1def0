package model

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestParseConfigDefaultsAndFields(t *testing.T) {
	raw := `{"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
		"num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100,
		"eos_token_id": [128001, 128008], "pad_token_id": null, "some_future_field": {"x": 1}}`
	c, err := ParseConfig([]byte(raw), "cfg.json")
	if err != nil {
		t.Fatal(err)
	}
	// LlamaConfig defaults fill what the file leaves out.
	if c.RopeTheta != 10000 || c.RMSNormEps != 1e-6 || c.NumKeyValueHeads != 4 || c.HeadDim != 16 || c.HiddenAct != "silu" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if !slices.Equal(c.EOSTokenID, TokenIDs{128001, 128008}) || c.PadTokenID != nil {
		t.Errorf("token ids: eos %v pad %v", c.EOSTokenID, c.PadTokenID)
	}
	if bos, ok := c.BOSTokenID.First(); !ok || bos != 1 {
		t.Errorf("bos %v", c.BOSTokenID)
	}
}

func TestConfigLabels(t *testing.T) {
	base := `{"architectures": ["RobertaForSequenceClassification"], "hidden_size": 32, "intermediate_size": 64,
		"num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 100`
	for _, c := range []struct {
		extra      string
		labels     int
		regression bool
	}{
		{"", 2, false},
		{`, "id2label": {"0": "a", "1": "b", "2": "c"}`, 3, false},
		{`, "id2label": {"0": "score"}`, 1, true},
		{`, "num_labels": 4, "problem_type": "single_label_classification"`, 4, false},
		{`, "id2label": {"0": "a", "1": "b"}, "problem_type": "regression"`, 2, true},
	} {
		cfg, err := ParseConfig([]byte(base+c.extra+"}"), "x")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.NumLabels != c.labels || cfg.Regression() != c.regression {
			t.Errorf("%s: %d labels, regression %v", c.extra, cfg.NumLabels, cfg.Regression())
		}
	}
	_, err := ParseConfig([]byte(base+`, "problem_type": "multi_label_classification"}`), "x")
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("multi-label: %v", err)
	}
}

// TestLayerWindows follows transformers' layer_types: Qwen2 slides only with
// use_sliding_window and from max_window_layers on; Mistral in every layer.
func TestLayerWindows(t *testing.T) {
	qwen := `{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
		"num_hidden_layers": 3, "num_attention_heads": 4, "vocab_size": 100, "sliding_window": 5,
		"max_window_layers": 1, "num_key_value_heads": 2`
	for _, c := range []struct {
		raw  string
		want []int
	}{
		{qwen + "}", []int{0, 0, 0}},
		{qwen + `, "use_sliding_window": true}`, []int{0, 5, 5}},
		{`{"architectures": ["MistralForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
			"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "sliding_window": 7}`, []int{7, 7}},
		{`{"architectures": ["MistralForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
			"num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "sliding_window": null}`, []int{0, 0}},
	} {
		cfg, err := ParseConfig([]byte(c.raw), "x")
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for i := 0; i < cfg.NumHiddenLayers; i++ {
			got = append(got, cfg.layerWindow(i))
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("windows %v, want %v for %s", got, c.want, c.raw)
		}
	}
}

// TestLlama3RopeFrequencies checks the three bands of Llama 3.1's scaling on the
// published Llama 3.1 8B settings: high frequencies kept, low ones divided by the
// factor, the ones in between interpolated (and monotone).
func TestLlama3RopeFrequencies(t *testing.T) {
	c := &Config{HeadDim: 128, RopeTheta: 500000, RopeScaling: &RopeScaling{RopeType: "llama3", Factor: 8,
		LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositionEmbeddings: 8192}}
	inv, err := newRopeFrequencies(c)
	if err != nil {
		t.Fatal(err)
	}
	kept, divided, smoothed := 0, 0, 0
	for i, f := range inv {
		plain := 1 / math.Pow(500000, float64(2*i)/128)
		wavelen := 2 * math.Pi / plain
		switch {
		case wavelen < 8192/4.0:
			kept++
			if f != plain {
				t.Errorf("i=%d: high frequency changed", i)
			}
		case wavelen > 8192:
			divided++
			if math.Abs(f-plain/8) > 1e-18 {
				t.Errorf("i=%d: low frequency %v, want %v", i, f, plain/8)
			}
		default:
			smoothed++
			if !(f < plain && f > plain/8) {
				t.Errorf("i=%d: medium frequency %v outside (%v, %v)", i, f, plain/8, plain)
			}
		}
		if i > 0 && !(f < inv[i-1]) {
			t.Errorf("frequencies not decreasing at %d", i)
		}
	}
	if kept == 0 || divided == 0 || smoothed == 0 {
		t.Errorf("bands kept %d, divided %d, smoothed %d: all should be used", kept, divided, smoothed)
	}
	c.RopeScaling = &RopeScaling{Type: "longrope"}
	if _, err := newRopeFrequencies(c); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "longrope") {
		t.Errorf("longrope: %v", err)
	}
}
