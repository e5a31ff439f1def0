package main

import (
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

func TestLockErrorReadersLocksOnlyFunctionsThatReadTheError(t *testing.T) {
	src := `package ts

// #include <stdlib.h>
import "C"

import "fmt"

func (ts *Tensor) Op(other *Tensor, s *Scalar, list []*Tensor, n int64, _ *Scalar) (err error) {
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
	if !strings.Contains(got, "(err error) {\n\truntime.LockOSThread()\n\tdefer runtime.UnlockOSThread()\n"+
		"\tdefer runtime.KeepAlive(ts)\n\tdefer runtime.KeepAlive(other)\n\tdefer runtime.KeepAlive(s)\n\tdefer runtime.KeepAlive(list)\n\tlib.Call()") {
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

// In the adapted gotch every op locks its thread and keeps each handle argument alive
// (an inline ts.FloatScalar(v) passed to MaskedFill was freed mid-op before).
func TestAdaptedOpsKeepTheirArgumentsAlive(t *testing.T) {
	path := "../../.build/gotch/ts/tensor-generated.go"
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the adapted gotch is missing (run make setup): %v", err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	ops, missing := 0, 0
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil || !callsTorchErr(fn.Body) {
			continue
		}
		ops++
		body := string(src[fset.Position(fn.Body.Lbrace).Offset:fset.Position(fn.Body.Rbrace).Offset])
		want := []string{"runtime.LockOSThread()"}
		for _, a := range handleArgs(fn) {
			want = append(want, "runtime.KeepAlive("+a+")")
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				if missing < 5 {
					t.Errorf("%s lacks %s", fn.Name.Name, w)
				}
				missing++
			}
		}
		if fn.Name.Name == "MaskedFill" && !strings.Contains(body, "runtime.KeepAlive(value)") {
			t.Errorf("MaskedFill does not keep its scalar alive")
		}
	}
	if ops < 2000 || missing > 0 {
		t.Errorf("%d ops checked, %d statements missing", ops, missing)
	}
}
