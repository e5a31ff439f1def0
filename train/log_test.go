package train

import (
	"strings"
	"testing"
	"time"
)

func TestProgressBar(t *testing.T) {
	got := progressBar(12, 100, 2.34567, 1234.4, 80*time.Second+400*time.Millisecond)
	want := "step 12/100 [==>                     ]  12% loss 2.3457 | 1234 tok/s | ETA 1m20s"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if done := progressBar(100, 100, 1, 1, 0); !strings.Contains(done, "[========================]") {
		t.Errorf("finished bar %q", done)
	}
}

// Log lines written while a bar is shown clear the bar's line and draw it again below.
func TestBarWriterKeepsTheBarLast(t *testing.T) {
	var out strings.Builder
	b := &barWriter{out: &out}
	b.Write([]byte("first\n"))
	b.set("[bar 1]")
	b.Write([]byte("event\n"))
	b.set("[bar 2]")
	b.finish()
	want := "first\n\r\033[K[bar 1]\r\033[Kevent\n[bar 1]\r\033[K[bar 2]\n"
	if out.String() != want {
		t.Errorf("got %q\nwant %q", out.String(), want)
	}
}
