package inspect

import (
	"fmt"
	"io"
	"sort"
)

// PhiOffset is one module's view of the constant-offset failure mode
// (docs/method.md §10): with a = 0 and B = 0 at initialisation only a moves at first,
// and φ(0) becomes a constant added to every entry of ΔW.
type PhiOffset struct {
	Module string
	// RawPhi0 is the paper's φ(0) = Σ_k a_k f(−c·b_k·g_k); Phi0 is the module's own φ
	// at 0 (0 when centred or residual).
	RawPhi0, Phi0 float64
	// Slope0 is the module's own φ'(0) (1 more when residual, 1 for LoRA).
	Slope0 float64
	// ConstShare is N·mean(ΔW)²/‖ΔW‖²_F, in [0, 1]: the share of ‖ΔW‖² in its constant
	// part.
	ConstShare float64
}

// WritePhiOffsetTable writes one row per module — module, φ(0), the paper's φ(0),
// φ'(0) and the constant share of ‖ΔW‖² (as a percentage) — sorted by module name,
// then the mean constant share over all modules. A share near 100 % with φ(0) ≠ 0 is
// the failure mode; phi.center or phi.residual remove it.
func WritePhiOffsetTable(w io.Writer, rows []PhiOffset, format TableFormat) error {
	if len(rows) == 0 {
		return fmt.Errorf("φ offset table: %w", ErrEmpty)
	}
	sorted := append([]PhiOffset(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Module < sorted[j].Module })
	header := []string{"module", "φ(0)", "paper's φ(0)", "φ'(0)", "constant share of ‖ΔW‖²"}
	var lines [][]string
	var share float64
	for _, r := range sorted {
		lines = append(lines, []string{r.Module, sci(r.Phi0), sci(r.RawPhi0), sci(r.Slope0), pct(r.ConstShare)})
		share += r.ConstShare
	}
	lines = append(lines, []string{fmt.Sprintf("mean over %d modules", len(rows)), "", "", "", pct(share / float64(len(rows)))})
	if err := writeTable(w, format, header, "|---|---:|---:|---:|---:|", lines); err != nil {
		return fmt.Errorf("φ offset table: %w", err)
	}
	return nil
}

func sci(v float64) string { return orNaN("%.4g", v) }

func pct(v float64) string { return orNaN("%.1f %%", 100*v) }
