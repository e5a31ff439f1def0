package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The goldens under testdata/hf come from the Hugging Face tokenizers library itself (its
// Node binding), run by testdata/hf/make_goldens.js on tokenizer.json files that script
// builds; see its header for how to regenerate them.
const regenerateHF = "regenerate with testdata/hf/make_goldens.js (see its header)"

// hfPipelines are the tokenizer.json files of testdata/hf, one per component family.
var hfPipelines = []string{
	"bert-uncased", "bert-cased", "roberta", "cl100k", "o200k", "deepseek3", "gemma3",
	"mistral-metaspace", "t5-unigram", "albert-unigram", "unigram-bytes", "added", "wordlevel-digits",
}

type hfCase struct {
	Text        string   `json:"text"`
	IDs         []int    `json:"ids"`
	IDsSpecial  []int    `json:"ids_special"`
	Tokens      []string `json:"tokens"`
	Decoded     string   `json:"decoded"`
	DecodedSkip string   `json:"decoded_skip"`
}

func readJSONFile(t testing.TB, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (%s)", err, regenerateHF)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Every pipeline encodes and decodes every golden text exactly as the reference: ids
// without and with special tokens (truncation included where the file sets it) and the
// decoded text with and without special tokens. (The golden's tokens, kept for reading,
// are the matched text, not always the vocabulary's spelling.)
func TestReferencePipelines(t *testing.T) {
	for _, name := range hfPipelines {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "hf", name)
			var g struct{ Cases []hfCase }
			readJSONFile(t, filepath.Join(dir, "golden.json"), &g)
			if len(g.Cases) < 150 {
				t.Fatalf("only %d cases (%s)", len(g.Cases), regenerateHF)
			}
			tok, err := Load(filepath.Join(dir, "tokenizer.json"))
			if err != nil {
				t.Fatal(err)
			}
			bad := 0
			for _, c := range g.Cases {
				ids, err := tok.Encode(c.Text, false)
				if err != nil || !slices.Equal(ids, c.IDs) {
					t.Errorf("Encode(%q, false) = %v, %v\nwant %v", c.Text, ids, err, c.IDs)
					bad++
				}
				ids, err = tok.Encode(c.Text, true)
				if err != nil || !slices.Equal(ids, c.IDsSpecial) {
					t.Errorf("Encode(%q, true) = %v, %v\nwant %v (%q)", c.Text, ids, err, c.IDsSpecial, c.Tokens)
					bad++
				}
				if s, err := tok.Decode(c.IDsSpecial, false); err != nil || s != c.Decoded {
					t.Errorf("Decode(%v, false) = %q, %v; want %q", c.IDsSpecial, s, err, c.Decoded)
					bad++
				}
				if s, err := tok.Decode(c.IDsSpecial, true); err != nil || s != c.DecodedSkip {
					t.Errorf("Decode(%v, true) = %q, %v; want %q", c.IDsSpecial, s, err, c.DecodedSkip)
					bad++
				}
				if bad > 20 {
					t.Fatal("too many differences")
				}
			}
		})
	}
}

type componentGolden struct {
	Config json.RawMessage   `json:"config"`
	Cases  []json.RawMessage `json:"cases"`
}

func readComponents(t testing.TB) (pre, norm, dec []componentGolden) {
	var g struct {
		PreTokenizers []componentGolden `json:"pre_tokenizers"`
		Normalizers   []componentGolden `json:"normalizers"`
		Decoders      []componentGolden `json:"decoders"`
	}
	readJSONFile(t, filepath.Join("testdata", "hf", "components.json"), &g)
	if len(g.PreTokenizers) < 60 || len(g.Normalizers) < 15 || len(g.Decoders) < 10 {
		t.Fatalf("components.json is incomplete (%s)", regenerateHF)
	}
	return g.PreTokenizers, g.Normalizers, g.Decoders
}

// decodeCase reads one [input, output] pair of components.json.
func decodeCase[I, O any](t *testing.T, raw json.RawMessage) (I, O) {
	t.Helper()
	var pair [2]json.RawMessage
	var in I
	var out O
	if err := json.Unmarshal(raw, &pair); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(pair[0], &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(pair[1], &out); err != nil {
		t.Fatal(err)
	}
	return in, out
}

// Every pre-tokenizer configuration (all Split behaviours with and without invert, on
// scanner, regexp2 and String patterns; Digits, Punctuation, Whitespace, WhitespaceSplit,
// BertPreTokenizer, ByteLevel, Metaspace, CharDelimiterSplit, Sequence) cuts every text
// into the reference's pieces.
func TestReferencePreTokenizers(t *testing.T) {
	pre, _, _ := readComponents(t)
	for _, g := range pre {
		p, err := parsePreTokenizer(g.Config)
		if err != nil {
			t.Errorf("%s: %v", g.Config, err)
			continue
		}
		for _, raw := range g.Cases {
			text, want := decodeCase[string, []string](t, raw)
			var got []string
			for _, w := range p.preTokenize([]word{{text, true}}) {
				got = append(got, w.s)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s\n on %q:\n got %q\nwant %q", g.Config, text, got, want)
			}
		}
	}
}

// Every normalizer configuration (BertNormalizer options, Lowercase, StripAccents, the
// Unicode forms, Nmt, Replace with String and Regex, Prepend, Strip, Sequence) gives the
// reference's text.
func TestReferenceNormalizers(t *testing.T) {
	_, norm, _ := readComponents(t)
	for _, g := range norm {
		n, err := parseNormalizer(g.Config)
		if err != nil {
			t.Errorf("%s: %v", g.Config, err)
			continue
		}
		for _, raw := range g.Cases {
			text, want := decodeCase[string, string](t, raw)
			if got := n.normalize(text); got != want {
				t.Errorf("%s\n on %q:\n got %q\nwant %q", g.Config, text, got, want)
			}
		}
	}
}

// Every decoder configuration (WordPiece, BPEDecoder, Metaspace, ByteFallback, Fuse,
// Strip, Replace, ByteLevel, Sequence) joins the token lists as the reference does.
func TestReferenceDecoders(t *testing.T) {
	_, _, dec := readComponents(t)
	for _, g := range dec {
		d, err := parseDecoder(g.Config)
		if err != nil {
			t.Errorf("%s: %v", g.Config, err)
			continue
		}
		for _, raw := range g.Cases {
			tokens, want := decodeCase[[]string, string](t, raw)
			got := ""
			for _, s := range d.decodeChain(tokens) {
				got += s
			}
			if got != want {
				t.Errorf("%s\n on %q:\n got %q\nwant %q", g.Config, tokens, got, want)
			}
		}
	}
}
