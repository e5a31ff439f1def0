package collective

import "context"

// What a backend package (gloo) needs of Config, exported here so that config.go and
// resolve.go keep their own small API.

// WithDefaults is c with DefaultName and DefaultTimeout where c leaves them zero.
func (c Config) WithDefaults() Config { return c.withDefaults() }

// Validate returns an error wrapping ErrConfig that names the first invalid field.
func (c Config) Validate() error { return c.validate() }

// Endpoint names where the rank listens, for error messages.
func (c Config) Endpoint() string { return c.endpoint() }

// ListenAddress is the numeric address the rank listens on ("" with an Interface):
// Hostname resolved, or, with neither Hostname nor Interface, the local address of the
// route to MASTER_ADDR or the machine's hostname, resolved. A name that does not resolve
// is an error naming it.
func (c Config) ListenAddress(ctx context.Context) (string, error) { return listenAddress(ctx, c) }
