package shard

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// Describe prints the plan as a table: per unit its tensors, elements, padding (tail
// padding and alignment gaps) and elements per rank, and where each rank after the
// first starts (tensor[element], relative to the unit's name prefix), then the totals.
func (p *Plan) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "shard plan: %d units, %d ranks, %d-byte elements, tensors aligned to %d bytes\n",
		len(p.Units), p.Size, p.ElemSize, p.Align)
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "unit\ttensors\telements\tpadding\tper rank\t")
	var numel, length, shard int64
	var starts []string
	for i, u := range p.Units {
		name := p.unitName(u)
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t\n", name, len(u.Tensors), u.Numel, u.Len-u.Numel, u.ShardLen)
		numel, length, shard = numel+u.Numel, length+u.Len, shard+u.ShardLen
		if p.Size > 1 {
			starts = append(starts, fmt.Sprintf("  %s: %s", name, p.rankStarts(i)))
		}
	}
	fmt.Fprintf(w, "total\t\t%d\t%d\t%d\t\n", numel, length-numel, shard)
	w.Flush()
	if len(starts) > 0 {
		fmt.Fprintln(&b, "where the slices of ranks 1.. start:")
		for _, s := range starts {
			fmt.Fprintln(&b, s)
		}
	}
	total := numel * int64(p.ElemSize)
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(p.ShardBytes()) / float64(total)
	}
	fmt.Fprintf(&b, "per rank %d bytes = %.1f%% of %d; largest gathered unit %d bytes\n",
		p.ShardBytes(), pct, total, p.MaxUnitBytes())
	return b.String()
}

// unitName is "embeddings", "block i" or "head".
func (p *Plan) unitName(u Unit) string {
	switch {
	case u.Block == Embeddings:
		return "embeddings"
	case u.Block == p.Blocks:
		return "head"
	}
	return fmt.Sprintf("block %d", u.Block)
}

// rankStarts says, for ranks 1..Size−1, which element of which tensor begins the
// rank's slice of unit u ("padding" when the slice holds none).
func (p *Plan) rankStarts(u int) string {
	prefix := commonPrefix(p.Units[u].Tensors)
	var parts []string
	for r := 1; r < p.Size; r++ {
		where := "padding"
		if pieces := p.Pieces(u, r); len(pieces) > 0 {
			first := pieces[0]
			where = fmt.Sprintf("%s[%d]", strings.TrimPrefix(first.Tensor, prefix), first.From)
			if first.At > 0 {
				where = fmt.Sprintf("gap, then %s", where)
			}
		}
		parts = append(parts, fmt.Sprintf("rank %d at %s", r, where))
	}
	return strings.Join(parts, ", ")
}

// commonPrefix is the dotted prefix all entries share ("model.layers.0."), or "".
func commonPrefix(es []Entry) string {
	if len(es) < 2 {
		if len(es) == 1 {
			if i := strings.LastIndex(es[0].Name, "."); i >= 0 {
				return es[0].Name[:strings.LastIndex(es[0].Name[:i], ".")+1]
			}
		}
		return ""
	}
	pre := es[0].Name
	for _, e := range es[1:] {
		for !strings.HasPrefix(e.Name, pre) {
			pre = pre[:len(pre)-1]
		}
	}
	if i := strings.LastIndex(pre, "."); i >= 0 {
		return pre[:i+1]
	}
	return ""
}
