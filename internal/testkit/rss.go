package testkit

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// PeakRSSGrowth runs f (Linux) and returns how far this process's resident set rose above
// where it stood when f began, at its highest while f ran: the kernel's peak (VmHWM)
// is reset first (writing 5 to /proc/self/clear_refs), so an earlier peak does not
// count. Run it where nothing else in the process allocates meanwhile (no parallel
// tests).
func PeakRSSGrowth(t testing.TB, f func()) int64 {
	t.Helper()
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak resident set: %v", err)
	}
	before := StatusBytes(t, "VmRSS:")
	f()
	return StatusBytes(t, "VmHWM:") - before
}

// StatusBytes reads one "kB" field of /proc/self/status ("VmRSS:", "VmHWM:", ...) in
// bytes (Linux).
func StatusBytes(t testing.TB, field string) int64 {
	t.Helper()
	file, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("/proc/self/status %s %q: %v", field, rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
