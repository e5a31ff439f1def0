package model

import "errors"

// Sentinel errors. Every error of this package starts with "model:" and wraps one of
// these where one applies; errors about a file name its path and, where one is at
// fault, the tensor or config field.
var (
	// ErrUnknownArchitecture reports a config.json whose architectures[0] is not registered.
	ErrUnknownArchitecture = errors.New("model: unknown architecture")
	// ErrConfig reports a config.json (or option) that is malformed or inconsistent.
	ErrConfig = errors.New("model: invalid config")
	// ErrUnsupported reports a valid Hugging Face setting this package does not implement.
	ErrUnsupported = errors.New("model: unsupported")
	// ErrMissingTensor reports a tensor the architecture needs that the checkpoint lacks.
	ErrMissingTensor = errors.New("model: missing tensor")
	// ErrUnexpectedTensor reports a checkpoint tensor the architecture does not use.
	ErrUnexpectedTensor = errors.New("model: unexpected tensor")
	// ErrShape reports a tensor whose shape differs from the one the config implies.
	ErrShape = errors.New("model: wrong shape")
	// ErrDType reports a checkpoint tensor of a dtype that cannot be loaded as weights.
	ErrDType = errors.New("model: unsupported dtype")
	// ErrInput reports forward inputs of the wrong shape or dtype.
	ErrInput = errors.New("model: invalid input")
	// ErrTarget reports an adapter target specification that matches nothing or is invalid.
	ErrTarget = errors.New("model: invalid adapter target")
	// ErrClosed reports use of a model after Close.
	ErrClosed = errors.New("model: closed")
)
