package model

import (
	"fmt"
	"slices"
	"sort"
)

// Task is what a model's head predicts.
type Task int

const (
	// CausalLM models return next-token logits, B×T×V.
	CausalLM Task = iota
	// SequenceClassification models return one row of class logits (or one score when
	// the config is a regression) per sequence, B×num_labels.
	SequenceClassification
)

func (t Task) String() string {
	switch t {
	case CausalLM:
		return "causal-lm"
	case SequenceClassification:
		return "sequence-classification"
	}
	return fmt.Sprintf("Task(%d)", int(t))
}

// Architecture is one entry of the registry, keyed by the class name that config.json
// lists first in "architectures".
type Architecture struct {
	// Name is the transformers class name, e.g. "LlamaForCausalLM".
	Name string
	// ModelType is config.json's model_type for it, e.g. "llama".
	ModelType string
	Task      Task
	// Defaults returns the defaults of the transformers config class.
	Defaults func() Config

	validate func(*Config) error
	build    func(*Config, *binder) (network, error)
}

var registry = map[string]*Architecture{}

// register adds a to the registry; it panics on a duplicate (a programmer error).
func register(a *Architecture) {
	if _, dup := registry[a.Name]; dup {
		panic("model: architecture registered twice: " + a.Name)
	}
	registry[a.Name] = a
}

// LookupArchitecture returns the registered architecture called name, or an error
// wrapping ErrUnknownArchitecture that names it and lists the known ones.
func LookupArchitecture(name string) (*Architecture, error) {
	if a, ok := registry[name]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownArchitecture, name, Architectures())
}

// ArchitectureForModelType returns the registered architecture whose model_type is t
// ("llama", "qwen2", "mistral", "phi3", "roberta", "bert").
func ArchitectureForModelType(t string) (*Architecture, error) {
	for _, name := range Architectures() {
		if registry[name].ModelType == t {
			return registry[name], nil
		}
	}
	var types []string
	for _, a := range registry {
		types = append(types, a.ModelType)
	}
	sort.Strings(types)
	return nil, fmt.Errorf("%w: model type %q (known: %v)", ErrUnknownArchitecture, t, types)
}

// Architectures lists the registered architecture names, sorted.
func Architectures() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func init() {
	register(&Architecture{Name: "LlamaForCausalLM", ModelType: "llama", Task: CausalLM,
		Defaults: llamaDefaults, validate: validateDecoder, build: buildDecoder})
	register(&Architecture{Name: "Qwen2ForCausalLM", ModelType: "qwen2", Task: CausalLM,
		Defaults: qwen2Defaults, validate: validateDecoder, build: buildDecoder})
	register(&Architecture{Name: "MistralForCausalLM", ModelType: "mistral", Task: CausalLM,
		Defaults: mistralDefaults, validate: validateDecoder, build: buildDecoder})
	register(&Architecture{Name: "Phi3ForCausalLM", ModelType: "phi3", Task: CausalLM,
		Defaults: phi3Defaults, validate: validateDecoder, build: buildDecoder})
	register(&Architecture{Name: "RobertaForSequenceClassification", ModelType: "roberta",
		Task: SequenceClassification, Defaults: robertaDefaults, validate: validateEncoder, build: buildEncoder})
	register(&Architecture{Name: "BertForSequenceClassification", ModelType: "bert",
		Task: SequenceClassification, Defaults: bertDefaults, validate: validateEncoder, build: buildEncoder})
}
