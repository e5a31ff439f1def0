package data_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/lrtrain/lrtrain/data"
)

// The prompts, written out in full as an independent reference for the template.
const (
	wantPromptWithInput = "Below is an instruction that describes a task, paired with an input that provides " +
		"further context. Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\nAdd the numbers.\n\n### Input:\n1 + 2\n\n### Response:\n"
	wantPromptNoInput = "Below is an instruction that describes a task. Write a response that appropriately " +
		"completes the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n"
)

func newBuilder(t *testing.T, tok data.Tokenizer, cfg data.BuildConfig) *data.Builder {
	t.Helper()
	b, err := data.NewBuilder(tok, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAlpacaTemplate(t *testing.T) {
	if got := data.AlpacaTemplate.Prompt("Add the numbers.", "1 + 2"); got != wantPromptWithInput {
		t.Errorf("with input:\n%q\nwant\n%q", got, wantPromptWithInput)
	}
	if got := data.AlpacaTemplate.Prompt("Say hi.", " \n"); got != wantPromptNoInput {
		t.Errorf("no input:\n%q\nwant\n%q", got, wantPromptNoInput)
	}
	// Placeholders inside the record's own text are not substituted again.
	got := data.Template{WithInput: "I:{instruction} X:{input}", NoInput: "I:{instruction}"}.Prompt("{input}", "{instruction}")
	if got != "I:{input} X:{instruction}" {
		t.Errorf("one-pass substitution: %q", got)
	}
	if err := (data.Template{WithInput: "{instruction}", NoInput: "{instruction}"}).Validate(); !errors.Is(err, data.ErrConfig) {
		t.Errorf("template without {input}: %v", err)
	}
	if err := (data.Template{WithInput: "{instruction}{input}", NoInput: "{instruction}{input}"}).Validate(); !errors.Is(err, data.ErrConfig) {
		t.Errorf("no-input template with {input}: %v", err)
	}
}

// Labels are IgnoreIndex exactly on BOS and the prompt, the ids on response and EOS.
func TestInstructionMasksThePromptExactly(t *testing.T) {
	b := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: 1024})
	for _, c := range []struct {
		rec    data.Record
		prompt string
	}{
		{data.Record{Instruction: "Add the numbers.", Input: "1 + 2", Output: "3"}, wantPromptWithInput},
		{data.Record{Instruction: "Say hi.", Output: "hi there"}, wantPromptNoInput},
	} {
		ex, err := b.Instruction(c.rec)
		if err != nil {
			t.Fatal(err)
		}
		prompt := concat([]int{data.ByteBOS}, byteIDs(c.prompt))
		response := concat(byteIDs(c.rec.Output), []int{data.ByteEOS})
		if want := concat(prompt, response); !equalInts(ex.InputIDs, want) {
			t.Fatalf("input ids = %v\nwant %v", ex.InputIDs, want)
		}
		if want := concat(repeat(data.IgnoreIndex, len(prompt)), response); !equalInts(ex.Labels, want) {
			t.Errorf("labels = %v\nwant %v", ex.Labels, want)
		}
		if ex.TargetTokens() != len(response) || ex.Truncated || ex.IsClassification() {
			t.Errorf("targets %d (want %d), truncated %v", ex.TargetTokens(), len(response), ex.Truncated)
		}
	}
}

func TestInstructionWithoutBOSOrEOS(t *testing.T) {
	rec := data.Record{Instruction: "Say hi.", Output: "hi"}
	ex, err := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: 1024, NoBOS: true}).Instruction(rec)
	if err != nil {
		t.Fatal(err)
	}
	prompt := byteIDs(wantPromptNoInput)
	if !equalInts(ex.InputIDs, concat(prompt, byteIDs("hi"), []int{data.ByteEOS})) || ex.Labels[0] != data.IgnoreIndex {
		t.Errorf("no BOS: ids %v labels %v", ex.InputIDs[:3], ex.Labels[:3])
	}
	ex, err = newBuilder(t, noEOS{}, data.BuildConfig{MaxLen: 1024}).Instruction(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got := ex.Labels[len(ex.Labels)-2:]; !equalInts(got, byteIDs("hi")) || ex.TargetTokens() != 2 {
		t.Errorf("no EOS: label tail %v, want %v", got, byteIDs("hi"))
	}
}

func TestInstructionTruncation(t *testing.T) {
	rec := data.Record{Instruction: "Say hi.", Output: "hello world"}
	prompt := concat([]int{data.ByteBOS}, byteIDs(wantPromptNoInput))
	response := concat(byteIDs(rec.Output), []int{data.ByteEOS})
	full := len(prompt) + len(response)

	t.Run("fits exactly", func(t *testing.T) {
		ex, _ := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: full}).Instruction(rec)
		if ex.Len() != full || ex.Truncated {
			t.Errorf("len %d truncated %v", ex.Len(), ex.Truncated)
		}
	})
	t.Run("response end is cut", func(t *testing.T) {
		ex, _ := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: len(prompt) + 5}).Instruction(rec)
		if !ex.Truncated || !equalInts(ex.InputIDs, concat(prompt, byteIDs("hello"))) {
			t.Fatalf("ids %v", ex.InputIDs[len(prompt):])
		}
		if !equalInts(ex.Labels, concat(repeat(data.IgnoreIndex, len(prompt)), byteIDs("hello"))) {
			t.Errorf("labels %v", ex.Labels[len(prompt)-2:])
		}
	})
	t.Run("prompt start is cut when the prompt alone is too long", func(t *testing.T) {
		const maxLen, minResp = 40, 4
		ex, err := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: maxLen, MinResponseTokens: minResp}).Instruction(rec)
		if err != nil {
			t.Fatal(err)
		}
		keptPrompt := maxLen - minResp - 1
		wantIDs := concat([]int{data.ByteBOS}, prompt[len(prompt)-keptPrompt:], byteIDs("hell"))
		if !ex.Truncated || !equalInts(ex.InputIDs, wantIDs) {
			t.Fatalf("ids %v\nwant %v", ex.InputIDs, wantIDs)
		}
		if !equalInts(ex.Labels, concat(repeat(data.IgnoreIndex, 1+keptPrompt), byteIDs("hell"))) {
			t.Errorf("labels %v", ex.Labels)
		}
		text, _ := data.ByteTokenizer{}.Decode(ex.InputIDs)
		if !strings.HasPrefix(text, "<s>") || !strings.HasSuffix(text, "### Response:\nhell") {
			t.Errorf("decoded %q: want BOS, the prompt's end with the response cue, then the response start", text)
		}
	})
	t.Run("a short response is kept whole", func(t *testing.T) {
		short := data.Record{Instruction: strings.Repeat("long ", 40), Output: "ab"}
		ex, _ := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: 32, MinResponseTokens: 8}).Instruction(short)
		want := concat(byteIDs("ab"), []int{data.ByteEOS})
		if ex.Len() != 32 || !equalInts(ex.InputIDs[29:], want) || !equalInts(ex.Labels[29:], want) || ex.TargetTokens() != 3 {
			t.Errorf("ids tail %v labels tail %v", ex.InputIDs[29:], ex.Labels[29:])
		}
	})
	if _, err := data.NewBuilder(data.ByteTokenizer{}, data.BuildConfig{MaxLen: 5, MinResponseTokens: 4}); !errors.Is(err, data.ErrConfig) {
		t.Errorf("max length not above BOS + min response: %v", err)
	}
}

func TestTextChunks(t *testing.T) {
	text := "abcdefghijklmnopqrstuvwxy" // 25 bytes: 27 tokens with BOS and EOS
	chunks, err := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: 10}).Text(data.Record{Kind: data.KindText, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	all := concat([]int{data.ByteBOS}, byteIDs(text), []int{data.ByteEOS})
	var joined []int
	for i, c := range chunks {
		joined = append(joined, c.InputIDs...)
		wantLabels := concat([]int{data.IgnoreIndex}, c.InputIDs[1:])
		if !equalInts(c.Labels, wantLabels) {
			t.Errorf("chunk %d labels %v", i, c.Labels)
		}
	}
	if len(chunks) != 3 || chunks[2].Len() != 7 || !equalInts(joined, all) {
		t.Errorf("chunks of %d, %d, ... joined %v", chunks[0].Len(), chunks[1].Len(), joined)
	}
	// 9 bytes + BOS + EOS = 11 tokens: the lone eleventh (EOS) would teach nothing.
	chunks, _ = newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: 10}).Text(data.Record{Text: "abcdefghi"})
	if len(chunks) != 1 || !equalInts(chunks[0].InputIDs, concat([]int{data.ByteBOS}, byteIDs("abcdefghi"))) {
		t.Errorf("lone last token: %d chunks", len(chunks))
	}
}

func TestClassificationExamples(t *testing.T) {
	b := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: 64, PairSeparator: " | "})
	ex, err := b.Classification(data.Record{Text: "a cat", TextPair: "a feline", HasPair: true, Label: 2, Score: 4.5})
	if err != nil {
		t.Fatal(err)
	}
	want := concat([]int{data.ByteBOS}, byteIDs("a cat | a feline"), []int{data.ByteEOS})
	if !equalInts(ex.InputIDs, want) || !ex.IsClassification() || ex.ClassLabel != 2 || ex.Score != 4.5 || ex.TargetTokens() != 0 {
		t.Errorf("pair example %+v", ex)
	}
	ex, _ = b.Classification(data.Record{Text: "good", Label: 1})
	if !equalInts(ex.InputIDs, concat([]int{data.ByteBOS}, byteIDs("good"), []int{data.ByteEOS})) {
		t.Errorf("single text %v", ex.InputIDs)
	}

	// Longest first: budget 8 = 11 - BOS - EOS - separator (1 byte, "\n").
	b = newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: 11})
	ex, _ = b.Classification(data.Record{Text: "0123456789", TextPair: "abcd", HasPair: true})
	if want := concat([]int{data.ByteBOS}, byteIDs("0123\nabcd"), []int{data.ByteEOS}); !ex.Truncated || !equalInts(ex.InputIDs, want) {
		t.Errorf("longest first: %v", ex.InputIDs)
	}
	ex, _ = b.Classification(data.Record{Text: "01234", TextPair: "abcdefg", HasPair: true})
	if want := concat([]int{data.ByteBOS}, byteIDs("0123\nabcd"), []int{data.ByteEOS}); !equalInts(ex.InputIDs, want) {
		t.Errorf("longest first, second longer: %v", ex.InputIDs)
	}
}

func TestBuildKeepsSourcesAndCounts(t *testing.T) {
	records := []data.Record{
		{Kind: data.KindInstruction, Instruction: "Say hi.", Output: "hi"},
		{Kind: data.KindText, Text: strings.Repeat("x", 300)},
		{Kind: data.KindInstruction, Instruction: "Say hi.", Output: strings.Repeat("y", 300)},
	}
	examples, sum, err := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: 256}).Build(records)
	if err != nil {
		t.Fatal(err)
	}
	var sources []int
	var targets int64
	for _, ex := range examples {
		sources = append(sources, ex.Sources...)
		targets += int64(ex.TargetTokens())
	}
	if !equalInts(sources, []int{0, 1, 1, 2}) || sum.Examples != 4 || sum.Chunks != 1 || sum.Truncated != 1 ||
		sum.TargetTokens != targets || sum.LongestLen != 256 {
		t.Errorf("sources %v, summary %+v", sources, sum)
	}
	if !strings.Contains(sum.String(), "4 examples (1 truncated") {
		t.Errorf("summary string %q", sum)
	}
	if _, _, err := newBuilder(t, data.ByteTokenizer{}, data.BuildConfig{MaxLen: 256}).Build([]data.Record{{}}); !errors.Is(err, data.ErrConfig) {
		t.Errorf("record without kind: %v", err)
	}
}
