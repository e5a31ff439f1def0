package tensorkit_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// No non-test code of the module calls gotch's in-place X_ methods (t.Mul_(u),
// t.Copy_(u), …): each replaces the tensor's C handle without freeing the old one, so
// the storage it referenced is never freed (a training step that did so lost a chunk
// of logits per micro-batch), and Copy_ ends the process on error. Done documents the
// out= form to use instead.
func TestNoGotchInPlaceMethods(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			// testkit is test code under another name.
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "testkit") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "lib" {
				return true // gotch's C layer, whose callers manage the handles
			}
			m := sel.Sel.Name
			if len(m) > 1 && strings.HasSuffix(m, "_") && m[0] >= 'A' && m[0] <= 'Z' {
				rel, _ := filepath.Rel(root, fset.Position(sel.Pos()).Filename)
				t.Errorf("%s:%d: %s is gotch's in-place form; use the out= form with out = self and tensorkit.Done",
					rel, fset.Position(sel.Pos()).Line, m)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read %d Go files under %s; the walk missed the module", files, root)
	}
}

// moduleRoot is the directory above the working directory that holds go.mod.
func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = up
	}
}
