package data_test

import (
	"errors"
	"testing"

	"github.com/lrtrain/lrtrain/data"
)

// lmExample is a hand-made language-modelling example whose labels are all targets (even
// the first), to see what packing does at boundaries.
func lmExample(first, n int, source int) data.Example {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = first + i
	}
	return data.Example{InputIDs: ids, Labels: append([]int(nil), ids...), Sources: []int{source}}
}

func TestPackBoundaries(t *testing.T) {
	examples := []data.Example{lmExample(10, 5, 0), lmExample(20, 4, 1), lmExample(30, 6, 2), lmExample(40, 4, 3)}
	examples[2].Truncated = true
	packed, sum, err := data.Pack(examples, 10)
	if err != nil {
		t.Fatal(err)
	}
	// Greedy in order: [5+4], [6+4].
	if len(packed) != 2 || sum.Sequences != 2 || sum.Examples != 4 || sum.Fill != 19.0/20 {
		t.Fatalf("%d sequences, summary %+v", len(packed), sum)
	}
	p := packed[0]
	if want := []int{10, 11, 12, 13, 14, 20, 21, 22, 23}; !equalInts(p.InputIDs, want) {
		t.Errorf("ids %v", p.InputIDs)
	}
	if want := []int{-100, 11, 12, 13, 14, -100, 21, 22, 23}; !equalInts(p.Labels, want) {
		t.Errorf("labels %v: each document's first label must be masked", p.Labels)
	}
	if want := []int{0, 1, 2, 3, 4, 0, 1, 2, 3}; !equalInts(p.PositionIDs, want) {
		t.Errorf("positions %v", p.PositionIDs)
	}
	if want := []int{1, 1, 1, 1, 1, 2, 2, 2, 2}; !equalInts(p.SegmentIDs, want) {
		t.Errorf("segments %v", p.SegmentIDs)
	}
	if !equalInts(p.DocStarts(), []int{0, 5}) || !equalInts(p.Sources, []int{0, 1}) || p.Truncated {
		t.Errorf("doc starts %v, sources %v, truncated %v", p.DocStarts(), p.Sources, p.Truncated)
	}
	q := packed[1]
	if !equalInts(q.DocStarts(), []int{0, 6}) || !equalInts(q.Sources, []int{2, 3}) || !q.Truncated || q.Len() != 10 {
		t.Errorf("second: starts %v sources %v truncated %v", q.DocStarts(), q.Sources, q.Truncated)
	}
	if q.TargetTokens() != 8 {
		t.Errorf("targets %d, want 10 - 2 boundaries", q.TargetTokens())
	}
	// The inputs are not modified.
	if examples[1].Labels[0] != 20 {
		t.Error("Pack modified its input")
	}
	if !equalInts(examples[0].DocStarts(), []int{0}) {
		t.Errorf("plain example doc starts %v", examples[0].DocStarts())
	}
}

func TestPackBuiltExamplesKeepsTargets(t *testing.T) {
	b, err := data.NewBuilder(data.ByteTokenizer{}, data.BuildConfig{MaxLen: 200})
	if err != nil {
		t.Fatal(err)
	}
	records := []data.Record{
		{Kind: data.KindInstruction, Instruction: "Say hi.", Output: "hi"},
		{Kind: data.KindInstruction, Instruction: "Say bye.", Output: "bye"},
		{Kind: data.KindInstruction, Instruction: "Add.", Input: "1 + 1", Output: "2"},
	}
	examples, sum, err := b.Build(records)
	if err != nil {
		t.Fatal(err)
	}
	packed, _, err := data.Pack(examples, 400)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range packed {
		total += p.TargetTokens()
	}
	// Built examples start with a masked BOS, so packing masks nothing more.
	if int64(total) != sum.TargetTokens || len(packed) != 2 {
		t.Errorf("packed targets %d, built %d, sequences %d", total, sum.TargetTokens, len(packed))
	}
}

func TestPackRejects(t *testing.T) {
	if _, _, err := data.Pack([]data.Example{lmExample(1, 11, 0)}, 10); !errors.Is(err, data.ErrTooLong) {
		t.Errorf("too long: %v", err)
	}
	if _, _, err := data.Pack([]data.Example{{InputIDs: []int{1, 2}}}, 10); !errors.Is(err, data.ErrConfig) {
		t.Errorf("classification: %v", err)
	}
	packed, _, _ := data.Pack([]data.Example{lmExample(1, 3, 0)}, 10)
	if _, _, err := data.Pack(packed, 10); !errors.Is(err, data.ErrConfig) {
		t.Errorf("already packed: %v", err)
	}
	if _, _, err := data.Pack([]data.Example{{InputIDs: []int{1, 2}, Labels: []int{1}}}, 10); !errors.Is(err, data.ErrConfig) {
		t.Errorf("labels of the wrong length: %v", err)
	}
}
