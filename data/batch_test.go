package data_test

import (
	"errors"
	"testing"

	"github.com/lrtrain/lrtrain/data"
)

func TestCollateLanguageModelling(t *testing.T) {
	a := data.Example{InputIDs: []int{1, 5, 6}, Labels: []int{-100, -100, 6}}
	b := data.Example{InputIDs: []int{1, 7, 8, 9, 2}, Labels: []int{-100, 7, 8, 9, 2}}
	c, err := data.NewCollator(data.ByteTokenizer{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.Collate([]data.Example{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if batch.Size != 2 || batch.SeqLen != 5 {
		t.Fatalf("shape %dx%d", batch.Size, batch.SeqLen)
	}
	checks := []struct {
		name string
		got  []int64
		want []int
	}{
		{"input ids", batch.InputIDs, []int{1, 5, 6, 0, 0, 1, 7, 8, 9, 2}},
		{"attention mask", batch.AttentionMask, []int{1, 1, 1, 0, 0, 1, 1, 1, 1, 1}},
		{"labels", batch.Labels, []int{-100, -100, 6, -100, -100, -100, 7, 8, 9, 2}},
		{"positions", batch.PositionIDs, []int{0, 1, 2, 0, 0, 0, 1, 2, 3, 4}},
		{"segments", batch.SegmentIDs, []int{1, 1, 1, 0, 0, 1, 1, 1, 1, 1}},
		{"lengths", batch.Lengths, []int{3, 5}},
		{"example mask", batch.ExampleMask, []int{1, 1}},
	}
	for _, ch := range checks {
		if !equalInt64s(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if batch.TargetTokens != 5 || batch.Examples != 2 || batch.ClassLabels != nil {
		t.Errorf("targets %d examples %d", batch.TargetTokens, batch.Examples)
	}

	// No PAD token: pad with EOS. Fixed length 7.
	c, err = data.NewCollator(data.ByteTokenizer{NoPAD: true}, 7)
	if err != nil {
		t.Fatal(err)
	}
	batch, _ = c.Collate([]data.Example{a})
	if !equalInt64s(batch.InputIDs, []int{1, 5, 6, 2, 2, 2, 2}) || !equalInt64s(batch.Labels, []int{-100, -100, 6, -100, -100, -100, -100}) {
		t.Errorf("EOS padding: ids %v labels %v", batch.InputIDs, batch.Labels)
	}
	if _, err := c.Collate([]data.Example{lmExample(1, 8, 0)}); !errors.Is(err, data.ErrTooLong) {
		t.Errorf("longer than the fixed length: %v", err)
	}
	if _, err := data.NewCollator(noEOS{}, 0); !errors.Is(err, data.ErrConfig) {
		t.Errorf("tokenizer without PAD or EOS: %v", err)
	}
}

func TestCollatePackedAndPadding(t *testing.T) {
	packed, _, err := data.Pack([]data.Example{lmExample(10, 2, 0), lmExample(20, 3, 1)}, 6)
	if err != nil {
		t.Fatal(err)
	}
	filler := lmExample(30, 4, 2).AsPadding()
	c := &data.Collator{PadID: 0}
	batch, err := c.Collate([]data.Example{packed[0], filler})
	if err != nil {
		t.Fatal(err)
	}
	if !equalInt64s(batch.PositionIDs, []int{0, 1, 0, 1, 2, 0, 1, 2, 3, 0}) ||
		!equalInt64s(batch.SegmentIDs, []int{1, 1, 2, 2, 2, 1, 1, 1, 1, 0}) {
		t.Errorf("positions %v segments %v", batch.PositionIDs, batch.SegmentIDs)
	}
	if !equalInt64s(batch.Labels, []int{-100, 11, -100, 21, 22, -100, -100, -100, -100, -100}) {
		t.Errorf("labels %v", batch.Labels)
	}
	if batch.TargetTokens != 3 || batch.Examples != 1 || !equalInt64s(batch.ExampleMask, []int{1, 0}) {
		t.Errorf("targets %d, examples %d, mask %v", batch.TargetTokens, batch.Examples, batch.ExampleMask)
	}
}

func TestCollateClassification(t *testing.T) {
	x := data.Example{InputIDs: []int{1, 5, 2}, ClassLabel: 1, Score: 0.25}
	y := data.Example{InputIDs: []int{1, 5, 6, 7, 2}, ClassLabel: 0, Score: 3.5}
	batch, err := (&data.Collator{PadID: 0}).Collate([]data.Example{x, y, x.AsPadding()})
	if err != nil {
		t.Fatal(err)
	}
	if batch.Labels != nil || !equalInt64s(batch.ClassLabels, []int{1, 0, -100}) || batch.Scores[1] != 3.5 ||
		batch.Scores[0] != 0.25 || batch.Scores[2] != 0 || !equalInt64s(batch.Lengths, []int{3, 5, 3}) ||
		batch.Examples != 2 || batch.TargetTokens != 0 {
		t.Errorf("batch %+v", batch)
	}
	if _, err := (&data.Collator{}).Collate([]data.Example{x, lmExample(1, 2, 0)}); !errors.Is(err, data.ErrConfig) {
		t.Errorf("mixed kinds: %v", err)
	}
	if _, err := (&data.Collator{}).Collate(nil); !errors.Is(err, data.ErrConfig) {
		t.Errorf("empty batch: %v", err)
	}
}
