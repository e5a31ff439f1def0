package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// gotch's Go wrappers receive an op's output handles through a buffer allocated
// with C.malloc(0) that is never freed: every op call leaked one small block
// (~80 bytes; 5 GB over 100k training steps of a real model), and ops with four
// or more outputs wrote past the block, since malloc(0) guarantees no space at
// all. mallocFix allocates room for outSlots handles and frees the buffer when
// the wrapper returns (the handle values have been copied into Go by then).
const outSlots = 16 // the generated ops return at most 7 tensors

var mallocLineRE = regexp.MustCompile(`^(\s+)(\w+) := \(\*lib\.Ctensor\)\(unsafe\.Pointer\(C\.malloc\(0\)\)\)\s*$`)

// mallocFixFiles are the files whose wrappers use the pattern, with the least
// number of sites each must have (a gotch upgrade that changes the generator
// fails loudly instead of leaking silently).
var mallocFixFiles = map[string]int{
	"ts/tensor-generated.go": 2000,
	"ts/patch.go":            4,
	"ts/tensor.go":           2,
}

// applyMallocFix rewrites the output-buffer allocations under dir.
func applyMallocFix(dir string) error {
	for file, least := range mallocFixFiles {
		path := filepath.Join(dir, file)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, n := fixMallocs(string(b))
		if n < least {
			return fmt.Errorf("%s: %d output-buffer allocations rewritten, expected at least %d", file, n, least)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// fixMallocs rewrites every `x := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))`
// line into an allocation of outSlots handles followed by a deferred free,
// unless the next line already frees x. It returns the text and the count.
func fixMallocs(src string) (string, int) {
	lines := strings.Split(src, "\n")
	out := make([]string, 0, len(lines)+len(lines)/8)
	n := 0
	for i, line := range lines {
		m := mallocLineRE.FindStringSubmatch(line)
		if m == nil {
			out = append(out, line)
			continue
		}
		indent, name := m[1], m[2]
		out = append(out, fmt.Sprintf("%s%s := (*lib.Ctensor)(unsafe.Pointer(C.malloc(%d)))", indent, name, outSlots*8))
		free := fmt.Sprintf("defer C.free(unsafe.Pointer(%s))", name)
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != free {
			out = append(out, indent+free)
		}
		n++
	}
	return strings.Join(out, "\n"), n
}
