package safetensors

import (
	"bufio"
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// mappedRSS returns the resident bytes of this process's mapping that holds addr, read
// from /proc/self/smaps (the kernel's own count of the mapping's pages in memory).
func mappedRSS(t *testing.T, addr uintptr) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) > 0 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			lo, hi, ok := strings.Cut(fields[0], "-")
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			in = ok && err1 == nil && err2 == nil && uint64(addr) >= a && uint64(addr) < b
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatalf("no mapping holds %#x in /proc/self/smaps", addr)
	return 0
}

// Release takes a tensor's pages out of the process's resident set, and the bytes read
// afterwards are the file's: the mapping's resident size is measured by the kernel
// before and after, and the re-read bytes are compared with what was written.
func TestReleaseDropsResidentPagesAndKeepsTheBytes(t *testing.T) {
	const n = 4 << 20 // bytes per tensor: many pages, far beyond the kernel's fault-around window
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	var tensors []Tensor
	for _, name := range []string{"a", "b"} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want[name] = b
		tensors = append(tensors, Tensor{Name: name, DType: U8, Shape: []int64{n}, Data: b})
	}
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := Write(path, tensors, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := f.Bytes("a")
	if err != nil {
		t.Fatal(err)
	}
	addr := uintptr(unsafe.Pointer(&a[0]))
	// Pages come in as they are read, plus the kernel's fault-around of up to 64 KiB
	// (and the header page): allow 256 KiB beside what was read.
	const slack = 256 << 10
	if !bytes.Equal(a, want["a"]) {
		t.Fatal(`"a" read back differs from what was written`)
	}
	if r := mappedRSS(t, addr); r < n || r > n+slack {
		t.Fatalf("after reading \"a\" the mapping has %d resident bytes, want %d to %d", r, n, n+slack)
	}
	if err := f.Release("a"); err != nil {
		t.Fatal(err)
	}
	if r := mappedRSS(t, addr); r > slack {
		t.Fatalf("after Release(\"a\") the mapping still has %d resident bytes, want at most %d", r, slack)
	}
	// The same bytes again, faulted in from the page cache; and b's.
	for _, name := range []string{"a", "b"} {
		got, err := f.Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[name]) {
			t.Fatalf("%q read after Release differs from what was written", name)
		}
	}
	if r := mappedRSS(t, addr); r < 2*n {
		t.Fatalf("after reading both tensors the mapping has %d resident bytes, want at least %d", r, 2*n)
	}
	if err := f.Release("b"); err != nil {
		t.Fatal(err)
	}
	if r := mappedRSS(t, addr); r < n || r > n+slack {
		t.Fatalf("after Release(\"b\") the mapping has %d resident bytes, want %d to %d (a's)", r, n, n+slack)
	}

	for _, c := range []struct {
		name string
		call func() error
		want error
	}{
		{"unknown tensor", func() error { return f.Release("c") }, ErrNotFound},
		{"closed file", func() error {
			g, err := Open(path)
			if err != nil {
				return err
			}
			g.Close()
			return g.Release("a")
		}, ErrClosed},
	} {
		if err := c.call(); !errors.Is(err, c.want) {
			t.Errorf("%s: Release returned %v, want %v", c.name, err, c.want)
		}
	}
	// A decoded image is not a mapping: nothing to release, and its bytes stay.
	img, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Release("a"); err != nil {
		t.Fatalf("Release on a decoded image: %v", err)
	}
	if got, _ := d.Bytes("a"); !bytes.Equal(got, want["a"]) {
		t.Fatal("a decoded image's bytes changed after Release")
	}
}
