package export

import "errors"

// Sentinel errors. Every error of this package starts with "export:" and wraps one of
// these where one applies (or an error of package model, lrlora or safetensors).
var (
	// ErrExists reports an output directory that already exists (see Options.Overwrite).
	ErrExists = errors.New("export: output exists")
	// ErrDType reports an output dtype that is not float32, bfloat16 or float16.
	ErrDType = errors.New("export: unsupported dtype")
	// ErrNoAdapters reports an adapter-only export of a model without adapters.
	ErrNoAdapters = errors.New("export: model has no adapters")
	// ErrConfig reports an option or base-model file that cannot be used.
	ErrConfig = errors.New("export: invalid configuration")
)
