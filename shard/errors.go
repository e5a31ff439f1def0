package shard

import "errors"

// Sentinel errors. Every error of this package starts with "shard:" and wraps one of
// these where one applies.
var (
	// ErrPlan reports tensors or options no plan can be made from.
	ErrPlan = errors.New("shard: invalid plan")
	// ErrCheckpoint reports a checkpoint tensor that disagrees with the plan (missing,
	// another shape, a dtype that cannot hold weights).
	ErrCheckpoint = errors.New("shard: checkpoint does not match the plan")
	// ErrState reports a Gatherer used out of order: before Bind, bound twice, or
	// asked for a block the plan does not have.
	ErrState = errors.New("shard: gatherer used out of order")
	// ErrUnsupported reports a setting the gatherer does not implement (a shard
	// group without a raw all-gather).
	ErrUnsupported = errors.New("shard: unsupported")
)
