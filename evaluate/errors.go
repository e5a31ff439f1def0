package evaluate

import "errors"

// Sentinel errors. Every error of this package starts with "evaluate:" and wraps one of
// these where one applies (or an error of package model or data).
var (
	// ErrTask reports a task that does not fit the model or the data (classification
	// on a causal LM, multiple choice on records without options, …).
	ErrTask = errors.New("evaluate: task does not fit")
	// ErrEmpty reports an evaluation with nothing to score.
	ErrEmpty = errors.New("evaluate: nothing to evaluate")
	// ErrConfig reports invalid options.
	ErrConfig = errors.New("evaluate: invalid options")
)
