package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// goFix is one exact-text correction to gotch's Go code. Each must match exactly
// once, so a gotch upgrade that moves the code fails the build loudly instead of
// silently skipping the fix.
type goFix struct {
	file, why, old, new string
}

var goFixes = []goFix{{
	file: "libtch/tensor.go",
	why: "at_grad_set_enabled returns a C int (4 bytes); gotch read 8 bytes, so the previous " +
		"grad mode it reports (and NoGradGuard restores) was garbage",
	old: "\tcretVal := C.at_grad_set_enabled(cbool)\n\treturn *(*int)(unsafe.Pointer(&cretVal))\n",
	new: "\tcretVal := C.at_grad_set_enabled(cbool)\n\treturn int(cretVal)\n",
}, {
	file: "ts/tensor.go",
	why: "every tensor carried a zeroed 100 kB Go allocation so that the GC would feel libtorch's " +
		"memory and run finalizers sooner; lrtrain frees tensors with Drop, and the allocation made " +
		"each op cost 100 kB of memclr and GC work: a tiny model's training step took 4x as long, " +
		"a small one's peak RSS was 13 % higher (BENCHMARKS.md)",
	old: "\tx.d = new(bigStruct)\n",
	new: "\t// lrtrain: no 100 kB bigStruct per tensor (tools/gotchadapt/gofixes.go)\n",
}}

// applyGoFixes applies goFixes to the copy of gotch in dir.
func applyGoFixes(dir string) error {
	for _, f := range goFixes {
		path := filepath.Join(dir, f.file)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(b)
		if n := strings.Count(src, f.old); n != 1 {
			return fmt.Errorf("fix for %s (%s): the code to replace occurs %d times, want 1", f.file, f.why, n)
		}
		if err := os.WriteFile(path, []byte(strings.Replace(src, f.old, f.new, 1)), 0o644); err != nil {
			return err
		}
	}
	return nil
}
