package main

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// gotch's hand-written libtch/torch_api.cpp (tensor creation, autograd, autocast,
// JIT modules, ...) calls libtorch APIs that newer libtorch versions deprecate and
// later remove. A function of it that does not compile is stubbed like a generated
// wrapper: its body sets libtorch's error, which gotch returns as a Go error. An
// #include of a header the libtorch no longer has is commented out (the functions
// that needed it then fail and are stubbed).

const apiFile = "torch_api.cpp"

// apiLineRE matches diagnostics located in torch_api.cpp itself (not in headers,
// not in torch_api_generated.cpp.h): "…/libtch/torch_api.cpp:177:42: error: …".
var apiLineRE = regexp.MustCompile(`(?m)(?:^|[/\s])` + regexp.QuoteMeta(apiFile) + `:(\d+):\d+:`)

// missingIncludeRE matches a fatal "No such file" on an #include of torch_api.cpp.
var missingIncludeRE = regexp.MustCompile(`(?m)(?:^|/)` + regexp.QuoteMeta(apiFile) + `:(\d+):\d+: fatal error: [^\n]*No such file`)

// apiFailingLines returns the 1-based lines of torch_api.cpp that diagnostics name.
func apiFailingLines(diag string) []int {
	seen := map[int]bool{}
	var lines []int
	for _, m := range apiLineRE.FindAllStringSubmatch(diag, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		if !seen[n] {
			seen[n] = true
			lines = append(lines, n)
		}
	}
	sort.Ints(lines)
	return lines
}

// apiSpan is one top-level definition of torch_api.cpp: lines start..end
// (0-based, inclusive), open the line holding its opening brace.
type apiSpan struct {
	name             string
	start, open, end int
}

var apiNameRE = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*\(`)

// apiSpans finds the top-level functions: a definition starts at column 0 (not a
// preprocessor line, comment, brace, using/namespace/extern/template line), its
// signature runs to the first line with '{', and it ends on that line when the
// braces balance there (one-liners), else at the next line that is exactly "}".
func apiSpans(text []string) []apiSpan {
	var spans []apiSpan
	for i := 0; i < len(text); i++ {
		l := text[i]
		if l == "" || strings.ContainsAny(l[:1], " \t#/}{*") || hasAnyPrefix(l, "using ", "namespace ", "extern ", "template") {
			continue
		}
		open := i
		for open < len(text) && !strings.Contains(text[open], "{") && !strings.HasSuffix(strings.TrimSpace(text[open]), ";") {
			open++
		}
		if open == len(text) || !strings.Contains(text[open], "{") {
			i = open
			continue // a declaration
		}
		sig := strings.Join(text[i:open+1], " ")
		m := apiNameRE.FindStringSubmatch(sig[:strings.Index(sig, "{")])
		if m == nil {
			continue
		}
		end := open
		if strings.Count(text[open], "{") != strings.Count(text[open], "}") {
			for end = open + 1; end < len(text) && text[end] != "}"; end++ {
			}
			if end == len(text) {
				return spans
			}
		}
		spans = append(spans, apiSpan{m[1], i, open, end})
		i = end
	}
	return spans
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// stubAPI comments out #includes the diagnostics call missing and replaces the
// body of every function containing a failing line with a PROTECT'ed throw
// naming it (non-void functions return a value-initialised result, as after any
// caught error). It returns the stubbed function names.
func stubAPI(src, diag string, lines []int, torchVersion string) (string, []string, error) {
	text := strings.Split(src, "\n")
	fixed := 0
	for _, m := range missingIncludeRE.FindAllStringSubmatch(diag, -1) {
		var n int
		fmt.Sscan(m[1], &n)
		if n >= 1 && n <= len(text) && strings.HasPrefix(strings.TrimSpace(text[n-1]), "#include") {
			text[n-1] = "// lrtrain: not in libtorch " + torchVersion + ": " + text[n-1]
			fixed++
		}
	}
	spans := apiSpans(text)
	hit := map[int]bool{}
	for _, ln := range lines {
		for k, sp := range spans {
			if sp.start <= ln-1 && ln-1 <= sp.end {
				hit[k] = true
			}
		}
	}
	if len(hit) == 0 && fixed == 0 {
		return "", nil, nil
	}
	var out, names []string
	prev := 0
	for k, sp := range spans {
		if !hit[k] {
			continue
		}
		sig := strings.Join(text[sp.start:sp.open+1], "\n")
		sig = strings.TrimRight(sig[:strings.Index(sig, "{")], " ")
		out = append(out, text[prev:sp.start]...)
		out = append(out, sig+" {",
			fmt.Sprintf("  PROTECT(throw std::runtime_error(\"gotch function %s is not available in the installed libtorch %s; lrtrain's build stubbed it\");)", sp.name, torchVersion))
		if !strings.HasPrefix(strings.TrimSpace(text[sp.start]), "void ") {
			out = append(out, "  return {};")
		}
		out = append(out, "}")
		prev = sp.end + 1
		names = append(names, sp.name)
	}
	out = append(out, text[prev:]...)
	return strings.Join(out, "\n"), names, nil
}
