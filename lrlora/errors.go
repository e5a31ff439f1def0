package lrlora

import "errors"

// Sentinel errors; wrapped with the operation and, where there is one, the adapter name.
var (
	// ErrConfig reports an invalid adapter or transfer-function configuration.
	ErrConfig = errors.New("lrlora: invalid config")
	// ErrShape reports tensors whose shapes do not fit together.
	ErrShape = errors.New("lrlora: shape mismatch")
	// ErrNonFinite reports a merged weight (or a stable-rank input) with NaN or Inf entries.
	ErrNonFinite = errors.New("lrlora: non-finite values")
	// ErrClosed reports use of an adapter after Close.
	ErrClosed = errors.New("lrlora: adapter closed")
)
