package etcdembed

import (
	"fmt"
	"os"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// newLogger builds etcd's zap logger: JSON lines on stderr at the given
// level, silenced once muted is set. Close sets it, because a stopping etcd
// reports every closed listener as an error ("use of closed network
// connection"), which is noise, not news.
func newLogger(level string, muted *atomic.Bool) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: log level %q: want debug, info, warn, error, panic or fatal", ErrStart, level)
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.Lock(os.Stderr), lvl)
	return zap.New(muteCore{Core: core, muted: muted}), nil
}

// muteCore drops every entry while muted is set.
type muteCore struct {
	zapcore.Core
	muted *atomic.Bool
}

func (c muteCore) With(fields []zapcore.Field) zapcore.Core {
	return muteCore{Core: c.Core.With(fields), muted: c.muted}
}

func (c muteCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.muted.Load() || !c.Enabled(e.Level) {
		return ce
	}
	return ce.AddCore(e, c)
}
