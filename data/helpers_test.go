package data_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/data"
)

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readOne reads a single file written into a fresh temporary directory.
func readOne(t *testing.T, format data.Format, name, content string, cfg data.ReadConfig) (*data.Dataset, string, error) {
	t.Helper()
	path := writeFile(t, t.TempDir(), name, content)
	cfg.Format, cfg.Paths = format, []string{path}
	ds, err := data.Read(cfg)
	return ds, path, err
}

// byteIDs is what ByteTokenizer.Encode(s, false) must return, computed independently.
func byteIDs(s string) []int {
	ids := make([]int, len(s))
	for i := range len(s) {
		ids[i] = int(s[i]) + 3
	}
	return ids
}

func concat(parts ...[]int) []int {
	var out []int
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func repeat(v, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalInt64s(a []int64, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != int64(b[i]) {
			return false
		}
	}
	return true
}

// wantRecordError checks that err is a bad record at path:line whose message contains
// reason.
func wantRecordError(t *testing.T, err error, path string, line int, reason string) {
	t.Helper()
	if !errors.Is(err, data.ErrBadRecord) {
		t.Fatalf("err = %v, want ErrBadRecord", err)
	}
	var re *data.RecordError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v (%T), want *RecordError", err, err)
	}
	if re.File != path || re.Line != line {
		t.Errorf("error at %s:%d, want %s:%d (%v)", re.File, re.Line, path, line, err)
	}
	if prefix := "data: " + path + ":" + itoa(line) + ": "; !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("message %q does not start with %q", err.Error(), prefix)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("message %q does not contain %q", err.Error(), reason)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// noEOS is a tokenizer with BOS but neither EOS nor PAD.
type noEOS struct{ data.ByteTokenizer }

func (noEOS) EOS() (int, bool) { return 0, false }
func (noEOS) PAD() (int, bool) { return 0, false }
