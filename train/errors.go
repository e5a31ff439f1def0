package train

import "errors"

// Sentinel errors. Every error of this package starts with "train:" and wraps one of
// these where one applies (or the error of the package that failed: data.ErrEmpty,
// checkpoint.ErrCorrupt, …).
var (
	// ErrConfig reports options that are invalid before anything is read.
	ErrConfig = errors.New("train: invalid options")
	// ErrNonFinite reports a NaN or infinite loss, gradient norm or parameter; training
	// stops at the step it names and no checkpoint of that state is written.
	ErrNonFinite = errors.New("train: non-finite value")
	// ErrCheckpoint reports a checkpoint that fails validation: missing or extra tensors,
	// wrong shapes or dtypes, non-finite values, an unreadable trainer state.
	ErrCheckpoint = errors.New("train: invalid checkpoint")
	// ErrMismatch reports a checkpoint that disagrees with the options in an
	// adapter-shaping field or in the base model (see the package documentation).
	ErrMismatch = errors.New("train: checkpoint does not match the configuration")
	// ErrExists reports a fresh run (resume never) into a checkpoint directory that
	// already holds checkpoints.
	ErrExists = errors.New("train: checkpoints exist")
	// ErrLocked reports a run into an output directory that another live run is using
	// (its LockFile is locked); the error names that run's process.
	ErrLocked = errors.New("train: output directory in use")
)
