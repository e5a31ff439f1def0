package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Two fixes to how package ts crosses into C, applied to every function that reads
// libtorch's error (that is, every op).
//
// Threads. gotch's C layer keeps libtorch's last error in a thread_local, and package ts reads
// it with a second cgo call (TorchErr) after each op. Go may run the goroutine on
// another OS thread for that second call: the op's error is then missed — and its
// uninitialised output taken for a tensor, which crashes when freed — while the
// thread's next user reads an error that is not its own. A stubbed op (which always
// throws) hit this in CI. The fix runs every ts function that reads the error on a
// locked OS thread: LockOSThread nests and costs a few nanoseconds, against
// microseconds for an op.
//
// Lifetimes. gotch frees a Tensor's or Scalar's C object in a finalizer, and an op
// passes only the C handle to libtorch: an argument the caller made for the call alone
// (ts.FloatScalar(v) inline) is unreachable while the op runs, and a collection then
// frees it under libtorch (CI saw a masked_fill whose scalar was no longer one). Every
// such function keeps its *Tensor and *Scalar arguments (and slices of them, and its
// receiver) alive until it returns, with deferred runtime.KeepAlive calls.

const lockStmt = "\n\truntime.LockOSThread()\n\tdefer runtime.UnlockOSThread()"

// lockErrorReaders inserts lockStmt, and a deferred runtime.KeepAlive for each handle
// argument, at the top of every function declared in src that calls TorchErr, and
// imports "runtime" if needed. It returns the new source and the number of functions
// changed.
func lockErrorReaders(name string, src []byte) ([]byte, int, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
	if err != nil {
		return nil, 0, fmt.Errorf("lock fix: parse %s: %w", name, err)
	}
	type insert struct {
		at   int // offset just after the opening brace
		text string
	}
	var ins []insert
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil || fn.Name.Name == "TorchErr" || !callsTorchErr(fn.Body) {
			continue
		}
		text := lockStmt
		for _, name := range handleArgs(fn) {
			text += "\n\tdefer runtime.KeepAlive(" + name + ")"
		}
		ins = append(ins, insert{fset.Position(fn.Body.Lbrace).Offset + 1, text})
	}
	if len(ins) == 0 {
		return src, 0, nil
	}
	sort.Slice(ins, func(i, j int) bool { return ins[i].at > ins[j].at })
	out := string(src)
	for _, in := range ins {
		out = out[:in.at] + in.text + out[in.at:]
	}
	if !importsRuntime(f) {
		// An import declaration of its own, right after the package clause: before any
		// cgo preamble, which must stay next to its import "C".
		end := fset.Position(f.Name.End()).Offset
		out = out[:end] + "\n\nimport \"runtime\"" + out[end:]
	}
	return []byte(out), len(ins), nil
}

// handleArgs names fn's receiver and parameters that hold gotch handles: *Tensor,
// *Scalar, and slices or variadics of them.
func handleArgs(fn *ast.FuncDecl) []string {
	var names []string
	add := func(fl *ast.FieldList) {
		if fl == nil {
			return
		}
		for _, field := range fl.List {
			if !holdsHandle(field.Type) {
				continue
			}
			for _, n := range field.Names {
				if n.Name != "_" {
					names = append(names, n.Name)
				}
			}
		}
	}
	add(fn.Recv)
	add(fn.Type.Params)
	return names
}

func holdsHandle(e ast.Expr) bool {
	switch t := e.(type) {
	case *ast.StarExpr:
		id, ok := t.X.(*ast.Ident)
		return ok && (id.Name == "Tensor" || id.Name == "Scalar")
	case *ast.ArrayType:
		return holdsHandle(t.Elt)
	case *ast.Ellipsis:
		return holdsHandle(t.Elt)
	}
	return false
}

func callsTorchErr(body *ast.BlockStmt) bool {
	found := false
	ast.Inspect(body, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok {
			if id, ok := c.Fun.(*ast.Ident); ok && id.Name == "TorchErr" {
				found = true
			}
		}
		return !found
	})
	return found
}

func importsRuntime(f *ast.File) bool {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "runtime" && (imp.Name == nil || imp.Name.Name == "runtime") {
			return true
		}
	}
	return false
}

// applyLockFix applies lockErrorReaders to package ts of the gotch copy in dir.
func applyLockFix(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "ts", "*.go"))
	if err != nil {
		return err
	}
	total := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, n, err := lockErrorReaders(path, src)
		if err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			return err
		}
		total += n
	}
	if total < 1000 {
		return fmt.Errorf("lock fix: only %d functions of gotch's ts call TorchErr (expected thousands): has gotch changed?", total)
	}
	return nil
}
