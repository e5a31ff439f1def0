package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

const generatedFile = "torch_api_generated.cpp.h"

// maxPasses bounds the compile-and-stub loop; two passes suffice in practice
// (one to find every failing wrapper, one to confirm the result compiles); a
// missing header stops the compiler early and costs a pass of its own.
const maxPasses = 6

// stubUncompilable runs the compiler's syntax check over libtch/torch_api.cpp,
// stubs every generated wrapper and hand-written function the diagnostics point
// into (stubapi.go), and repeats until the file compiles. It returns the stubbed
// function names, sorted.
func stubUncompilable(libtch string, lt libtorch) ([]string, error) {
	genPath := filepath.Join(libtch, generatedFile)
	all := map[string]bool{}
	for pass := 1; pass <= maxPasses; pass++ {
		diag, ok, err := syntaxCheck(libtch, lt)
		if err != nil {
			return nil, err
		}
		if ok {
			names := make([]string, 0, len(all))
			for n := range all {
				names = append(names, n)
			}
			sort.Strings(names)
			return names, nil
		}
		var names []string
		if lines := failingLines(diag); len(lines) > 0 {
			src, err := os.ReadFile(genPath)
			if err != nil {
				return nil, err
			}
			out, gen, err := stubFunctions(string(src), lines, lt.Version)
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(genPath, []byte(out), 0o644); err != nil {
				return nil, err
			}
			names = append(names, gen...)
		}
		// The hand-written file: functions and #includes the diagnostics point into.
		apiPath := filepath.Join(libtch, apiFile)
		src, err := os.ReadFile(apiPath)
		if err != nil {
			return nil, err
		}
		out, api, err := stubAPI(string(src), diag, apiFailingLines(diag), lt.Version)
		if err != nil {
			return nil, err
		}
		if out != "" {
			if err := os.WriteFile(apiPath, []byte(out), 0o644); err != nil {
				return nil, err
			}
		}
		names = append(names, api...)
		if len(names) == 0 && out == "" {
			return nil, fmt.Errorf("pass %d: torch_api.cpp does not compile against libtorch %s and no generated wrapper, hand-written function or #include could be stubbed:\n%s",
				pass, lt.Version, firstLines(diag, 30))
		}
		for _, n := range names {
			all[n] = true
		}
		fmt.Printf("gotchadapt: pass %d stubbed %d functions (%d hand-written)\n", pass, len(names), len(api))
	}
	return nil, fmt.Errorf("torch_api.cpp still fails to compile after %d passes", maxPasses)
}

// syntaxCheck compiles torch_api.cpp with -fsyntax-only and returns the diagnostics.
func syntaxCheck(libtch string, lt libtorch) (string, bool, error) {
	cxx := os.Getenv("CXX")
	if cxx == "" {
		cxx = "g++"
	}
	args := append([]string{"-fsyntax-only", "-w", "-fmax-errors=0", "-I" + libtch}, lt.cxxFlags()...)
	args = append(args, filepath.Join(libtch, "torch_api.cpp"))
	cmd := exec.Command(cxx, args...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return "", true, nil
	}
	if _, isExit := err.(*exec.ExitError); !isExit {
		return "", false, fmt.Errorf("%s: %w", cxx, err)
	}
	return string(out), false, nil
}

var diagLineRE = regexp.MustCompile(regexp.QuoteMeta(generatedFile) + `:(\d+):\d+:`)

// failingLines returns every line of the generated file that a diagnostic
// names, including "required from here" notes of template instantiations.
func failingLines(diag string) []int {
	seen := map[int]bool{}
	var lines []int
	for _, m := range diagLineRE.FindAllStringSubmatch(diag, -1) {
		n, _ := strconv.Atoi(m[1])
		if !seen[n] {
			seen[n] = true
			lines = append(lines, n)
		}
	}
	sort.Ints(lines)
	return lines
}

var funcStartRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_ *]*\b(atg_[A-Za-z0-9_]+)\(.*\{\s*$`)

// stubFunctions replaces the PROTECT(...) body of each generated wrapper that
// contains one of the given 1-based lines with a throw naming the op, keeping
// the signature (and any trailing `return 0;`) so declarations and Go code stay
// valid. The thrown error is turned into a Go error by gotch as for any op.
func stubFunctions(src string, lines []int, torchVersion string) (string, []string, error) {
	text := strings.Split(src, "\n")
	type span struct {
		name       string
		start, end int // 0-based, inclusive: the function's first and last lines
	}
	var spans []span
	for i := 0; i < len(text); i++ {
		m := funcStartRE.FindStringSubmatch(text[i])
		if m == nil {
			continue
		}
		j := i + 1
		for j < len(text) && text[j] != "}" {
			j++
		}
		if j == len(text) {
			return "", nil, fmt.Errorf("%s: function %s at line %d has no closing brace", generatedFile, m[1], i+1)
		}
		spans = append(spans, span{m[1], i, j})
		i = j
	}
	hit := map[int]bool{}
	for _, ln := range lines {
		idx := sort.Search(len(spans), func(k int) bool { return spans[k].end >= ln-1 })
		if idx < len(spans) && spans[idx].start <= ln-1 {
			hit[idx] = true
		}
	}
	var names []string
	var out []string
	prev := 0
	for idx := range spans {
		if !hit[idx] {
			continue
		}
		sp := spans[idx]
		out = append(out, text[prev:sp.start+1]...)
		op := strings.TrimPrefix(sp.name, "atg_")
		out = append(out,
			"  PROTECT(",
			fmt.Sprintf("    throw std::runtime_error(\"gotch op %s (%s) is not available in the installed libtorch %s; lrtrain's build stubbed it\");", op, sp.name, torchVersion),
			"  )")
		// Keep a trailing `return 0;` of non-void wrappers.
		for k := sp.start + 1; k < sp.end; k++ {
			if strings.TrimSpace(text[k]) == "return 0;" {
				out = append(out, text[k])
			}
		}
		out = append(out, "}")
		prev = sp.end + 1
		names = append(names, sp.name)
	}
	out = append(out, text[prev:]...)
	return strings.Join(out, "\n"), names, nil
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
