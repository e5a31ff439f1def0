package inspect

import (
	"errors"
	"strings"
	"testing"
)

func TestWritePhiOffsetTable(t *testing.T) {
	rows := []PhiOffset{
		{Module: "model.layers.1.mlp.down_proj", RawPhi0: 0.8, Phi0: 0.8, Slope0: 0.01, ConstShare: 0.87},
		{Module: "model.layers.0.self_attn.q_proj", RawPhi0: 0.5, Phi0: 0, Slope0: 1.2, ConstShare: 0.01},
	}
	var md strings.Builder
	if err := WritePhiOffsetTable(&md, rows, Markdown); err != nil {
		t.Fatal(err)
	}
	want := "| module | φ(0) | paper's φ(0) | φ'(0) | constant share of ‖ΔW‖² |\n" +
		"|---|---:|---:|---:|---:|\n" +
		"| model.layers.0.self_attn.q_proj | 0 | 0.5 | 1.2 | 1.0 % |\n" +
		"| model.layers.1.mlp.down_proj | 0.8 | 0.8 | 0.01 | 87.0 % |\n" +
		"| mean over 2 modules |  |  |  | 44.0 % |\n"
	if md.String() != want {
		t.Errorf("markdown:\n%s\nwant\n%s", md.String(), want)
	}
	var txt strings.Builder
	if err := WritePhiOffsetTable(&txt, rows, Text); err != nil || !strings.Contains(txt.String(), "87.0 %") {
		t.Errorf("text: %q, %v", txt.String(), err)
	}
	if err := WritePhiOffsetTable(&txt, nil, Text); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
}
