package launch

import (
	"bytes"
	"io"
	"sync"
)

// lockedWriter serialises the writes of several ranks to one console.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// maxPartialLine bounds the buffered partial line of a prefixWriter.
const maxPartialLine = 64 << 10

// prefixWriter writes whole lines, each preceded by prefix; a partial line
// waits for its end (a last line without a newline stays
// unshown, which is harmless for a console copy of a log file).
type prefixWriter struct {
	w      io.Writer
	prefix []byte
	buf    []byte
}

func newPrefixWriter(w io.Writer, prefix string) *prefixWriter {
	return &prefixWriter{w: w, prefix: []byte(prefix)}
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	var out []byte
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		out = append(out, p.prefix...)
		out = append(out, p.buf[:i+1]...)
		p.buf = p.buf[i+1:]
	}
	if len(p.buf) > maxPartialLine { // a progress bar drawn with \r: cut it
		out = append(append(append(out, p.prefix...), p.buf...), '\n')
		p.buf = p.buf[:0]
	}
	if len(out) > 0 {
		if _, err := p.w.Write(out); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}
