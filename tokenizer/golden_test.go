package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// golden.json is written by testdata/reference_bpe.py, an independent Python reference;
// see that script for how to regenerate it.
type goldenFile struct {
	Splits map[string]struct {
		Regex string `json:"regex"`
		Cases []struct {
			Text   string   `json:"text"`
			Pieces []string `json:"pieces"`
		} `json:"cases"`
	} `json:"splits"`
	Families map[string]struct {
		Cases []struct {
			Text        string `json:"text"`
			IDs         []int  `json:"ids"`
			IDsSpecial  []int  `json:"ids_special"`
			Decoded     string `json:"decoded"`
			DecodedSkip string `json:"decoded_skip"`
		} `json:"cases"`
		PrefixDecodes []struct {
			IDs  []int  `json:"ids"`
			Text string `json:"text"`
		} `json:"prefix_decodes"`
	} `json:"families"`
}

const regenerate = "regenerate with: python3 testdata/make_tokenizers.py && python3 testdata/reference_bpe.py"

var families = []string{"gpt2", "roberta", "llama3", "qwen2", "llama2", "metaspace", "phi3"}

func readGolden(t testing.TB) *goldenFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden.json"))
	if err != nil {
		t.Fatalf("%v (%s)", err, regenerate)
	}
	var g goldenFile
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

// loadFamily loads testdata/<name>/tokenizer.json or, for the files of the HF-library
// goldens, testdata/hf/<name>/tokenizer.json.
func loadFamily(t testing.TB, name string) *Tokenizer {
	t.Helper()
	path := filepath.Join("testdata", name, "tokenizer.json")
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join("testdata", "hf", name, "tokenizer.json")
	}
	tok, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestPatternsMatchReferenceRegexEngine(t *testing.T) {
	g := readGolden(t)
	for name, sp := range g.Splits {
		p, ok := lookupPattern(sp.Regex)
		if !ok {
			t.Fatalf("%s: regex not recognised: %q", name, sp.Regex)
		}
		if len(sp.Cases) < 100 {
			t.Fatalf("%s: only %d cases (%s)", name, len(sp.Cases), regenerate)
		}
		for _, c := range sp.Cases {
			got := p.split(c.Text, nil)
			if !slices.Equal(got, c.Pieces) {
				t.Errorf("%s split %q:\n got %q\nwant %q", name, c.Text, got, c.Pieces)
			}
		}
	}
}

func TestEncodeDecodeMatchReference(t *testing.T) {
	g := readGolden(t)
	for _, fam := range families {
		gf, ok := g.Families[fam]
		if !ok || len(gf.Cases) == 0 {
			t.Fatalf("golden.json has no cases for %s (%s)", fam, regenerate)
		}
		t.Run(fam, func(t *testing.T) {
			tok := loadFamily(t, fam)
			for _, c := range gf.Cases {
				ids, err := tok.Encode(c.Text, false)
				if err != nil {
					t.Fatalf("Encode(%q): %v", c.Text, err)
				}
				if !slices.Equal(ids, c.IDs) {
					t.Errorf("Encode(%q, false)\n got %v\nwant %v", c.Text, ids, c.IDs)
				}
				ids, err = tok.Encode(c.Text, true)
				if err != nil {
					t.Fatalf("Encode(%q): %v", c.Text, err)
				}
				if !slices.Equal(ids, c.IDsSpecial) {
					t.Errorf("Encode(%q, true)\n got %v\nwant %v", c.Text, ids, c.IDsSpecial)
				}
				if s, err := tok.Decode(c.IDsSpecial, false); err != nil || s != c.Decoded {
					t.Errorf("Decode(%v, false) = %q, %v; want %q", c.IDsSpecial, s, err, c.Decoded)
				}
				if s, err := tok.Decode(c.IDsSpecial, true); err != nil || s != c.DecodedSkip {
					t.Errorf("Decode(%v, true) = %q, %v; want %q", c.IDsSpecial, s, err, c.DecodedSkip)
				}
			}
			for _, c := range gf.PrefixDecodes {
				if s, err := tok.Decode(c.IDs, false); err != nil || s != c.Text {
					t.Errorf("Decode(%v) = %q, %v; want %q", c.IDs, s, err, c.Text)
				}
			}
		})
	}
}
