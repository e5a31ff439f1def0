package main

import (
	"context"
	"errors"

	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/dist/worker"
)

// workerGroups forms this worker's device and groups as c says (dist/worker: none
// outside lrtrain launch); an invalid configuration or launcher environment is a
// usage error (exit 2). The returned Groups are safe to Close even on an error.
func workerGroups(ctx context.Context, c *config.Config, cancelRun context.CancelCauseFunc) (*worker.Groups, error) {
	g, err := worker.Form(ctx, worker.SpecOf(c), cancelRun)
	if errors.Is(err, worker.ErrUsage) {
		return g, usageError{err}
	}
	return g, err
}
