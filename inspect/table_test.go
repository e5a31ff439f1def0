package inspect

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestMarkdownTableHasARowPerModule(t *testing.T) {
	rows := sampleRanks(t)
	// Reverse the input: the table sorts by layer, kind, module.
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	var b bytes.Buffer
	if err := WriteStableRankTable(&b, rows, Markdown); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if want := 2 + len(rows) + 3; len(lines) != want {
		t.Fatalf("%d lines, want header, rule, %d modules and 3 means:\n%s", len(lines), len(rows), b.String())
	}
	if lines[0] != "| layer | kind | module | sr(ΔW) | sr(B·A) | ΔW/B·A |" {
		t.Errorf("header %q", lines[0])
	}
	for _, r := range rows {
		if n := strings.Count(b.String(), "| "+r.Module+" |"); n != 1 {
			t.Errorf("module %s appears in %d rows", r.Module, n)
		}
	}
	// First data row: layer 0, attn, q_proj: sr 2, 1.5, ratio 1.333.
	if want := "| 0 | attn | model.layers.0.self_attn.q_proj | 2.000 | 1.500 | 1.333 |"; lines[2] != want {
		t.Errorf("first row %q, want %q", lines[2], want)
	}
	if want := "| 0 | mlp | model.layers.0.mlp.down_proj | 6.000 | 2.200 | 2.727 |"; lines[4] != want {
		t.Errorf("third row %q, want %q", lines[4], want)
	}
	// Means: attn ΔW = mean(2+.5l) and (3+.25l) over l = 0..3 = (2.75 + 3.375)/2 = 3.0625;
	// attn BA = 1.65; mlp ΔW = (4.25 + 5.625)/2 = 4.9375, BA 2.1; all 4.0 and 1.875.
	for _, want := range []string{
		"| mean | attn | 8 modules | 3.062 | 1.650 | 1.856 |",
		"| mean | mlp | 8 modules | 4.938 | 2.100 | 2.351 |",
		"| mean | all | 16 modules | 4.000 | 1.875 | 2.133 |",
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
}

func TestTextTableAndEdgeCases(t *testing.T) {
	rows := []LayerRank{
		{Module: "mlp.down_proj", Layer: -1, Kind: MLP, SRDelta: math.NaN(), SRBA: 1},
		{Module: "a|b.q_proj", Layer: 2, Kind: Attn, SRDelta: 1, SRBA: 2},
	}
	var b bytes.Buffer
	if err := WriteStableRankTable(&b, rows, Text); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "NaN") || !strings.HasPrefix(out, "layer") || strings.Contains(out, "|---") {
		t.Errorf("text table:\n%s", out)
	}
	// A module without a layer sorts first and shows "-".
	if lines := strings.Split(out, "\n"); !strings.HasPrefix(lines[1], "-  ") {
		t.Errorf("row without a layer: %q", lines[1])
	}
	b.Reset()
	if err := WriteStableRankTable(&b, rows, Markdown); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `a\|b.q_proj`) {
		t.Errorf("a | in a module name is not escaped:\n%s", b.String())
	}
	if err := WriteStableRankTable(&b, nil, Markdown); !errors.Is(err, ErrEmpty) {
		t.Errorf("no rows: %v", err)
	}
}
