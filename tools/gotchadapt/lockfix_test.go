package main

import (
	"go/format"
	"strings"
	"testing"
)

func TestLockErrorReadersLocksOnlyFunctionsThatReadTheError(t *testing.T) {
	src := `package ts

// #include <stdlib.h>
import "C"

import "fmt"

func Op() (err error) {
	lib.Call()
	if err = TorchErr(); err != nil {
		return fmt.Errorf("op: %w", err)
	}
	return nil
}

func Plain() int { return 1 }

func TorchErr() error { return nil }
`
	out, n, err := lockErrorReaders("x.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d functions changed, want 1 (Op)", n)
	}
	got := string(out)
	if _, err := format.Source(out); err != nil {
		t.Fatalf("the result does not parse: %v\n%s", err, got)
	}
	if !strings.Contains(got, "func Op() (err error) {\n\truntime.LockOSThread()\n\tdefer runtime.UnlockOSThread()\n\tlib.Call()") {
		t.Errorf("Op is not locked:\n%s", got)
	}
	if strings.Count(got, "LockOSThread()") != 1 {
		t.Errorf("more than Op was locked:\n%s", got)
	}
	if !strings.Contains(got, "package ts\n\nimport \"runtime\"\n\n// #include <stdlib.h>\nimport \"C\"") {
		t.Errorf("runtime is not imported ahead of the cgo preamble:\n%s", got)
	}
	again, _, err := lockErrorReaders("x.go", []byte("package ts\n\nimport \"runtime\"\n\nfunc F() { _ = TorchErr(); runtime.GC() }\n"))
	if err != nil || strings.Count(string(again), "import \"runtime\"") != 1 {
		t.Errorf("runtime imported twice (%v):\n%s", err, again)
	}
}
