package collective

import "errors"

// Sentinel errors; match them with errors.Is. Errors of collectives wrap
// them with the op, the rank, the group size, the element count and the
// timeout in force.
var (
	// ErrConfig: a Config field or an argument is invalid (world size 0,
	// rank out of range, mismatched buffer lengths, unknown op).
	ErrConfig = errors.New("collective: invalid configuration")
	// ErrStore: the store could not be reached or failed while the ranks
	// exchanged their addresses.
	ErrStore = errors.New("collective: store failed")
	// ErrTimeout: a collective, or the connection setup, ran past its
	// timeout: a peer is hung, dead or never arrived.
	ErrTimeout = errors.New("collective: timeout")
	// ErrPeerLost: a connection to a peer failed (the peer died, or failed
	// its own collective and closed its connections).
	ErrPeerLost = errors.New("collective: peer lost")
	// ErrAborted: Abort was called, the context was cancelled, or the
	// Config's AbortOn channel fired.
	ErrAborted = errors.New("collective: aborted")
	// ErrBroken: an earlier collective failed, so the group is unusable; the
	// error also wraps that first failure.
	ErrBroken = errors.New("collective: group broken by an earlier failure")
	// ErrClosed: the group was closed.
	ErrClosed = errors.New("collective: group closed")
)
