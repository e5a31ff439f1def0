package rdzv

import "errors"

// Sentinel errors; match them with errors.Is. The errors returned wrap them
// with the operation, the job, the round and the names involved.
var (
	// ErrTimeout: a wait (join, barrier, lookup, single request) ran past its
	// timeout.
	ErrTimeout = errors.New("rdzv: timeout")
	// ErrUnreachable: no etcd endpoint answered within the dial timeout.
	ErrUnreachable = errors.New("rdzv: etcd unreachable")
	// ErrAuth: etcd rejected the credentials, or the user may not use the
	// job's prefix.
	ErrAuth = errors.New("rdzv: etcd authentication failed")
	// ErrSessionLost: the agent's lease expired or was revoked; its keys are
	// gone and it must join a new round.
	ErrSessionLost = errors.New("rdzv: session lost")
	// ErrRoundClosed: the round moved on while a worker was using it.
	ErrRoundClosed = errors.New("rdzv: round closed")
	// ErrNoRound: Publish, Lookup, Barrier or Watch before a successful Join.
	ErrNoRound = errors.New("rdzv: no round joined")
	// ErrClosed: the agent or worker was closed.
	ErrClosed = errors.New("rdzv: closed")
	// ErrConfig: an option or argument is invalid.
	ErrConfig = errors.New("rdzv: invalid configuration")
	// ErrCorrupt: a rendezvous key holds something this package did not write.
	ErrCorrupt = errors.New("rdzv: corrupt rendezvous state")
)
