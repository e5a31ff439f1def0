package tokenizer

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// goldenTexts returns the texts of golden.json (the reference's test strings).
func goldenTexts(t testing.TB) []string {
	g := readGolden(t)
	var texts []string
	for _, c := range g.Families["gpt2"].Cases {
		texts = append(texts, c.Text)
	}
	return texts
}

func roundTrip(t *testing.T, tok *Tokenizer, s string) string {
	t.Helper()
	ids, err := tok.Encode(s, false)
	if err != nil {
		t.Fatalf("Encode(%q): %v", s, err)
	}
	out, err := tok.Decode(ids, false)
	if err != nil {
		t.Fatalf("Decode(Encode(%q)): %v", s, err)
	}
	return out
}

// Byte-level BPE loses nothing: Decode(Encode(s)) == s, special tokens included, except
// that Qwen2 normalizes to NFC and RoBERTa adds its prefix space.
func TestByteLevelRoundTrip(t *testing.T) {
	texts := goldenTexts(t)
	for _, fam := range []string{"gpt2", "llama3", "qwen2", "roberta"} {
		tok := loadFamily(t, fam)
		for _, s := range texts {
			want := s
			switch fam {
			case "qwen2":
				want = norm.NFC.String(s)
			case "roberta":
				if strings.ContainsAny(s, "<") { // its added tokens split the text
					continue
				}
				if !strings.HasPrefix(s, " ") && s != "" {
					want = " " + s
				}
			}
			if got := roundTrip(t, tok, s); got != want {
				t.Errorf("%s: Decode(Encode(%q)) = %q, want %q", fam, s, got, want)
			}
		}
	}
}

// SentencePiece-style BPE with byte fallback: the legacy normalizer prepends "▁" and maps
// spaces to "▁", and the decoder strips exactly that one space again, so text without
// added tokens round-trips exactly, leading spaces included. With the Metaspace decoder the
// first token's "▁" is dropped, so one leading space of the text is lost.
func TestSentencePieceRoundTrip(t *testing.T) {
	texts := goldenTexts(t)
	hasAdded := func(tok *Tokenizer, s string) bool {
		for content := range tok.added.byText {
			if strings.Contains(s, content) {
				return true
			}
		}
		return false
	}
	for _, fam := range []string{"llama2", "phi3"} {
		tok := loadFamily(t, fam)
		tok.SetMaxLength(0)
		for _, s := range texts {
			if hasAdded(tok, s) {
				continue
			}
			if got := roundTrip(t, tok, s); got != s {
				t.Errorf("%s: Decode(Encode(%q)) = %q", fam, s, got)
			}
		}
	}
	tok := loadFamily(t, "metaspace")
	tok.SetMaxLength(0)
	unk, _ := tok.TokenID("<unk>")
	checked := 0
	for _, s := range texts {
		ids, err := tok.Encode(s, false)
		if err != nil {
			t.Fatal(err)
		}
		if hasAdded(tok, s) || slices.Contains(ids, unk) {
			continue
		}
		checked++
		if got, want := roundTrip(t, tok, s), strings.TrimPrefix(s, " "); got != want {
			t.Errorf("metaspace: Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
	}
	if checked < 20 {
		t.Errorf("only %d metaspace texts without <unk>", checked)
	}
}

func TestIgnoreMergesUsesWholeWordToken(t *testing.T) {
	llama3, gpt2 := loadFamily(t, "llama3"), loadFamily(t, "gpt2")
	want, ok := llama3.TokenID("Ġzyxq")
	if !ok {
		t.Fatal("test vocabulary lacks Ġzyxq")
	}
	if ids, _ := llama3.Encode(" zyxq", false); !slices.Equal(ids, []int{want}) {
		t.Errorf("llama3 (ignore_merges) Encode(\" zyxq\") = %v, want [%d]", ids, want)
	}
	if ids, _ := gpt2.Encode(" zyxq", false); len(ids) < 2 {
		t.Errorf("gpt2 (merges only) Encode(\" zyxq\") = %v, want the merges' pieces", ids)
	}
}

func TestSpecialTokensAndConfig(t *testing.T) {
	llama2 := loadFamily(t, "llama2")
	if id, ok := llama2.BOS(); !ok || id != 1 {
		t.Errorf("llama2 BOS = %d, %v (bos_token given as an AddedToken object)", id, ok)
	}
	if id, ok := llama2.EOS(); !ok || id != 2 {
		t.Errorf("llama2 EOS = %d, %v", id, ok)
	}
	if _, ok := llama2.PAD(); ok {
		t.Error("llama2 PAD defined, want none (pad_token null)")
	}
	if ids, _ := llama2.Encode("<s>Hi</s>", false); ids[0] != 1 || ids[len(ids)-1] != 2 {
		t.Errorf("special tokens inside text not recognised: %v", ids)
	}
	if !llama2.IsSpecial(1) || llama2.IsSpecial(5) {
		t.Error("IsSpecial wrong")
	}

	qwen := loadFamily(t, "qwen2")
	if _, ok := qwen.BOS(); ok {
		t.Error("qwen2 BOS defined, want none")
	}
	pad, ok := qwen.PAD()
	if want, _ := qwen.TokenID("<|endoftext|>"); !ok || pad != want {
		t.Errorf("qwen2 PAD = %d, %v; want %d", pad, ok, want)
	}
	if !strings.Contains(qwen.ChatTemplate(), "<|im_start|>") {
		t.Errorf("qwen2 chat template (list form) not read: %q", qwen.ChatTemplate())
	}
	if tpl, ok := DetectTemplate(qwen.ChatTemplate()); !ok || tpl.Name != "chatml" {
		t.Errorf("DetectTemplate(qwen2) = %q, %v", tpl.Name, ok)
	}

	meta := loadFamily(t, "metaspace") // no tokenizer_config.json
	if _, ok := meta.EOS(); ok || meta.ChatTemplate() != "" {
		t.Error("metaspace has no tokenizer_config.json but reports tokens or a template")
	}
	if meta.VocabSize() != 621 {
		t.Errorf("VocabSize = %d, want 621", meta.VocabSize())
	}
	if s, ok := meta.Token(1); !ok || s != "<s>" {
		t.Errorf("Token(1) = %q, %v", s, ok)
	}
	if _, ok := meta.Token(meta.VocabSize()); ok {
		t.Error("Token past the vocabulary succeeded")
	}
}

func TestTruncation(t *testing.T) {
	tok := loadFamily(t, "metaspace") // tokenizer.json: max_length 12, right
	text := "The quick brown fox jumps over the lazy dog and the other foxes."
	ids, _ := tok.Encode(text, true)
	if len(ids) != 12 || ids[0] != 1 || ids[11] != 2 {
		t.Errorf("truncated with specials: %v, want 12 ids from <s> to </s>", ids)
	}
	tok.SetMaxLength(0)
	full, _ := tok.Encode(text, false)
	tok.SetMaxLength(5)
	if ids, _ := tok.Encode(text, false); !slices.Equal(ids, full[:5]) {
		t.Errorf("right truncation: %v, want %v", ids, full[:5])
	}
	phi := loadFamily(t, "phi3") // max_length 24, left
	phi.SetMaxLength(0)
	full, _ = phi.Encode(text, false)
	phi.SetMaxLength(6)
	if ids, _ := phi.Encode(text, true); !slices.Equal(ids, append([]int{1}, full[len(full)-5:]...)) {
		t.Errorf("left truncation: %v, want <s> and the last 5 of %v", ids, full)
	}
}

func TestEncodeDecodeErrors(t *testing.T) {
	tok := loadFamily(t, "llama3")
	if _, err := tok.Encode("bad \xff utf8", false); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8: err = %v", err)
	}
	for _, ids := range [][]int{{-1}, {tok.VocabSize()}, {1, 1 << 40}} {
		if _, err := tok.Decode(ids, false); !errors.Is(err, ErrUnknownID) {
			t.Errorf("Decode(%v): err = %v, want ErrUnknownID", ids, err)
		}
	}
}

// Encode is safe for concurrent use: the BPE word cache, the regexp2 fallback (o200k),
// WordPiece and Unigram give the same ids from four goroutines as from one.
func TestConcurrentEncode(t *testing.T) {
	texts := goldenTexts(t)
	for _, fam := range []string{"llama3", "o200k", "bert-uncased", "t5-unigram"} {
		tok := loadFamily(t, fam)
		want := make([][]int, len(texts))
		for i, s := range texts {
			want[i], _ = tok.Encode(s, true)
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i, s := range texts {
					if ids, _ := tok.Encode(s, true); !slices.Equal(ids, want[i]) {
						t.Errorf("%s: concurrent Encode(%q) = %v, want %v", fam, s, ids, want[i])
					}
				}
			}()
		}
		wg.Wait()
	}
}
