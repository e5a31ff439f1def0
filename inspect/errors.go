package inspect

import "errors"

// Sentinel errors; the functions wrap them with the plot, series and point involved.
var (
	// ErrEmpty: nothing to plot or tabulate.
	ErrEmpty = errors.New("inspect: no data")
	// ErrNotFinite: a NaN or infinite value where a plot needs a number.
	ErrNotFinite = errors.New("inspect: non-finite value")
	// ErrInput: other unusable input (unequal lengths, a negative singular value, …).
	ErrInput = errors.New("inspect: invalid input")
	// ErrModule: a module name whose layer kind (attention or MLP) cannot be told.
	ErrModule = errors.New("inspect: unrecognised module name")
	// ErrMetrics: a metrics JSONL file that cannot be read.
	ErrMetrics = errors.New("inspect: bad metrics file")
)
