package main

import (
	"bufio"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// beginMarker and endMarker delimit a generated block of BENCHMARKS.md; the text between
// them is replaced, everything outside is left as it is.
func beginMarker(name string) string { return "<!-- bench:" + name + " begin -->" }
func endMarker(name string) string   { return "<!-- bench:" + name + " end -->" }

// replaceBlock returns doc with the text between name's markers replaced by body. The
// markers stay on their own lines. Exactly one pair must be present, in order.
func replaceBlock(doc, name, body string) (string, error) {
	begin, end := beginMarker(name), endMarker(name)
	if n := strings.Count(doc, begin); n != 1 {
		return "", fmt.Errorf("bench: %d %q markers in the document, want 1", n, begin)
	}
	if n := strings.Count(doc, end); n != 1 {
		return "", fmt.Errorf("bench: %d %q markers in the document, want 1", n, end)
	}
	i := strings.Index(doc, begin) + len(begin)
	j := strings.Index(doc, end)
	if j < i {
		return "", fmt.Errorf("bench: %q comes before %q", end, begin)
	}
	body = strings.Trim(body, "\n")
	return doc[:i] + "\n" + body + "\n" + doc[j:], nil
}

// blockNames lists the generated blocks of doc in order (names of begin markers).
func blockNames(doc string) []string {
	var names []string
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(line, "<!-- bench:"); ok {
			if name, ok = strings.CutSuffix(name, " begin -->"); ok {
				names = append(names, name)
			}
		}
	}
	return names
}

// benchLine is one result line of `go test -bench`: the benchmark's name (without the
// -GOMAXPROCS suffix), its iterations and its metrics by unit ("ns/op", "MB/s", custom).
type benchLine struct {
	name    string
	n       int
	metrics map[string]float64
	units   []string // in the order printed
}

// parseGoBench reads the result lines of `go test -bench` output, and the benchmarks
// that were skipped (with the reason, from the "--- SKIP" line's following log line).
func parseGoBench(out string) (lines []benchLine, skipped map[string]string) {
	skipped = map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	lastSkip := ""
	for sc.Scan() {
		text := sc.Text()
		trimmed := strings.TrimSpace(text)
		if rest, ok := strings.CutPrefix(trimmed, "--- SKIP: "); ok {
			lastSkip = trimProcs(strings.Fields(rest)[0])
			skipped[lastSkip] = ""
			continue
		}
		if lastSkip != "" && strings.HasPrefix(text, "    ") && skipped[lastSkip] == "" {
			reason := trimmed
			if k := strings.Index(reason, ": "); k >= 0 && strings.Contains(reason[:k], ".go:") {
				reason = reason[k+2:]
			}
			skipped[lastSkip] = reason
			continue
		}
		lastSkip = ""
		f := strings.Fields(text)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		b := benchLine{name: trimProcs(f[0]), n: n, metrics: map[string]float64{}}
		ok := true
		for k := 2; k+1 < len(f); k += 2 {
			v, err := strconv.ParseFloat(f[k], 64)
			if err != nil {
				ok = false
				break
			}
			b.metrics[f[k+1]] = v
			b.units = append(b.units, f[k+1])
		}
		if ok {
			lines = append(lines, b)
		}
	}
	return lines, skipped
}

// trimProcs drops the "-N" GOMAXPROCS suffix of a benchmark name.
func trimProcs(name string) string {
	if k := strings.LastIndexByte(name, '-'); k > 0 {
		if _, err := strconv.Atoi(name[k+1:]); err == nil {
			return name[:k]
		}
	}
	return name
}

// genericTable renders benchmark lines as a markdown table, one column per unit (the
// union, in first-seen order).
func genericTable(lines []benchLine) string {
	var units []string
	for _, l := range lines {
		for _, u := range l.units {
			if !slices.Contains(units, u) {
				units = append(units, u)
			}
		}
	}
	var sb strings.Builder
	sb.WriteString("| benchmark | runs | " + strings.Join(units, " | ") + " |\n|---|---|")
	sb.WriteString(strings.Repeat("---|", len(units)) + "\n")
	for _, l := range lines {
		fmt.Fprintf(&sb, "| %s | %d |", l.name, l.n)
		for _, u := range units {
			if v, ok := l.metrics[u]; ok {
				fmt.Fprintf(&sb, " %s |", num(v))
			} else {
				sb.WriteString(" — |")
			}
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// num formats a measured value with three significant digits (no exponent below 1e9).
func num(v float64) string {
	switch a := max(v, -v); {
	case a == 0:
		return "0"
	case a >= 1e9:
		return strconv.FormatFloat(v, 'g', 3, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

// textBlock puts a command's own table, as it printed it, in a fenced block, leaving out
// lines that name temporary paths.
func textBlock(out string) string {
	var keep []string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.Contains(line, "/tmp/") || strings.HasPrefix(line, "work directory") {
			continue
		}
		keep = append(keep, line)
	}
	return "```text\n" + strings.Join(keep, "\n") + "\n```\n"
}
