package inspect

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
)

// TableFormat selects how WriteStableRankTable lays out its table.
type TableFormat int

const (
	// Markdown is a GitHub-flavoured Markdown table.
	Markdown TableFormat = iota
	// Text is plain columns aligned with spaces, for terminals and logs.
	Text
)

// WriteStableRankTable writes one row per module — layer, kind, module, sr(ΔW), sr(B·A) and
// their ratio — sorted by layer, then kind (attn before mlp), then module name, followed by
// the mean over the attention modules, the MLP modules and all modules. Values print with
// three decimals; NaN prints as NaN (a table reports what it is given, unlike the plots).
func WriteStableRankTable(w io.Writer, rows []LayerRank, format TableFormat) error {
	if len(rows) == 0 {
		return fmt.Errorf("stable-rank table: %w", ErrEmpty)
	}
	sorted := append([]LayerRank(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.Layer != b.Layer {
			return a.Layer < b.Layer
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind // "attn" < "mlp"
		}
		return a.Module < b.Module
	})
	header := []string{"layer", "kind", "module", "sr(ΔW)", "sr(B·A)", "ΔW/B·A"}
	var lines [][]string
	for _, r := range sorted {
		layer := "-"
		if r.Layer >= 0 {
			layer = fmt.Sprint(r.Layer)
		}
		lines = append(lines, []string{layer, string(r.Kind), r.Module, num(r.SRDelta), num(r.SRBA), num(r.SRDelta / r.SRBA)})
	}
	for _, k := range []Kind{Attn, MLP, ""} {
		var d, b float64
		n := 0
		for _, r := range rows {
			if k == "" || r.Kind == k {
				d, b, n = d+r.SRDelta, b+r.SRBA, n+1
			}
		}
		if n == 0 {
			continue
		}
		kind := string(k)
		if k == "" {
			kind = "all"
		}
		lines = append(lines, []string{"mean", kind, fmt.Sprintf("%d modules", n),
			num(d / float64(n)), num(b / float64(n)), num(d / b)})
	}
	if err := writeTable(w, format, header, "|---:|---|---|---:|---:|---:|", lines); err != nil {
		return fmt.Errorf("stable-rank table: %w", err)
	}
	return nil
}

func num(v float64) string { return orNaN("%.3f", v) }

// orNaN is v printed with verb, or "NaN" (a table reports what it is given).
func orNaN(verb string, v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return fmt.Sprintf(verb, v)
}

// writeTable writes lines under header in format: a Markdown table with the
// alignment row align, or plain text columns.
func writeTable(w io.Writer, format TableFormat, header []string, align string, lines [][]string) error {
	if format == Markdown {
		return writeMarkdown(w, header, align, lines)
	}
	return writeText(w, header, lines)
}

// writeMarkdown is a Markdown table with the alignment row align; a "|" in a cell is
// escaped.
func writeMarkdown(w io.Writer, header []string, align string, lines [][]string) error {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n")
	b.WriteString(align + "\n")
	for _, l := range lines {
		for i := range l {
			l[i] = strings.ReplaceAll(l[i], "|", `\|`)
		}
		b.WriteString("| " + strings.Join(l, " | ") + " |\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeText(w io.Writer, header []string, lines [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range append([][]string{header}, lines...) {
		fmt.Fprintln(tw, strings.Join(l, "\t")+"\t")
	}
	return tw.Flush()
}
