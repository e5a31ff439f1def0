package metrics

import "errors"

// Sentinel errors; the functions wrap them with the metric's name and the details.
var (
	// ErrEmpty: no examples (or no tokens) to score.
	ErrEmpty = errors.New("metrics: no examples")
	// ErrLength: inputs that should pair up have different lengths.
	ErrLength = errors.New("metrics: inputs of different lengths")
	// ErrNotFinite: a NaN (or an infinity where none can be scored) in the input.
	ErrNotFinite = errors.New("metrics: non-finite value")
	// ErrInput: any other invalid input (a negative NLL sum, a gold index out of range, …).
	ErrInput = errors.New("metrics: invalid input")
)
