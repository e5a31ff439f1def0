package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// knownRegexes pairs each hand-written scanner with the regex text it implements.
var knownRegexes = []struct {
	p     splitPattern
	regex string
}{{patternGPT2, regexGPT2}, {patternLlama3, regexLlama3}, {patternQwen2, regexQwen2}}

// runePools are the characters random texts are drawn from: every class the patterns
// distinguish (letters of several scripts and cases, numbers of several kinds, white space
// with and without line breaks, punctuation and symbols, marks, apostrophes with the
// contraction letters in odd cases and their folding partners ſ and K).
var runePools = []string{
	"abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789",
	"''''sStTdDmMlLrReEvVſ\u212a", "     \t\n\r\u00a0\u3000\u2028\u0085\u000b\u000c",
	".,;:!?-_()[]{}<>/\\|@#$%^&*+=~`\"", "éèêëàâäôöûüçñÅøßœæİı", "\u0301\u0308\u0327\u0903\u093f\u20dd",
	"日本語中文漢字テキストかな한국어", "αβγδΣσςπабвгдЖЗИ", "٠١٢٣۴۵६७𝟙½²Ⅻ①", "😀👍🏽❤️🥰🇫🇷\u200d\u200b\ufeff",
}

// randomTexts returns n seeded random strings made of runs drawn from runePools.
func randomTexts(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 7))
	pools := make([][]rune, len(runePools))
	for i, p := range runePools {
		pools[i] = []rune(p)
	}
	out := make([]string, n)
	for i := range out {
		var sb strings.Builder
		for runs := 1 + rng.IntN(10); runs > 0; runs-- {
			pool := pools[rng.IntN(len(pools))]
			for k := 1 + rng.IntN(6); k > 0; k-- {
				sb.WriteRune(pool[rng.IntN(len(pool))])
			}
		}
		out[i] = sb.String()
	}
	return out
}

// agreementTexts are the golden texts of both reference generators plus random ones.
func agreementTexts(t testing.TB, random int) []string {
	texts := goldenTexts(t)
	for _, sp := range readGolden(t).Splits {
		for _, c := range sp.Cases {
			texts = append(texts, c.Text)
		}
	}
	return append(texts, randomTexts(random, 1)...)
}

func checkAgreement(t *testing.T, p splitPattern, re regexMatcher, text string) {
	t.Helper()
	want := p.findMatches(text, nil)
	got := re.findMatches(text, nil)
	if !slices.Equal(got, want) {
		t.Errorf("%v on %q:\nregexp2 %v\nscanner %v", p, text, got, want)
	}
}

// The regexp2 fallback, given the exact regex text of each known pattern, finds the same
// matches as the hand-written scanner on every golden text and on thousands of random
// texts. The scanners are themselves checked against two independent references (the
// Python regex reference and the HF library), so this pins the fallback's translation of
// lookahead, case folding and Unicode classes.
func TestRegexFallbackAgreesWithScanners(t *testing.T) {
	texts := agreementTexts(t, 5000)
	for _, k := range knownRegexes {
		re, err := compileRegex(k.regex)
		if err != nil {
			t.Fatalf("%v: %v", k.p, err)
		}
		for _, text := range texts {
			checkAgreement(t, k.p, re, text)
		}
	}
}

// FuzzRegexFallbackAgrees is the same check on fuzzed input. Run longer with:
// go test -run '^$' -fuzz FuzzRegexFallbackAgrees -fuzztime 60s ./tokenizer/
func FuzzRegexFallbackAgrees(f *testing.F) {
	for _, s := range randomTexts(50, 2) {
		f.Add(s)
	}
	res := make([]regexMatcher, len(knownRegexes))
	for i, k := range knownRegexes {
		var err error
		if res[i], err = compileRegex(k.regex); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return // Encode rejects invalid UTF-8 before any pattern runs
		}
		for i, k := range knownRegexes {
			checkAgreement(t, k.p, res[i], s)
		}
	})
}

// Hand-checked translations of the Oniguruma constructs regexp2 reads differently.
func TestTranslateOnig(t *testing.T) {
	cases := []struct{ in, want string }{
		{`(?i:'s|t)`, "(?:'[s\u017fS]|[tT])"},
		{`(?i)k[a-c]`, "[k\u212aK][a-cABC]"},
		{`x(?i)y(?-i:z)`, `x[yY](?:z)`},
		{`(?im)a.`, `(?s)[aA].`},
		{`\w+\W`, `[` + onigWordClass + `]+[^` + onigWordClass + `]`},
		{`[\w-]\h\H`, `[` + onigWordClass + `-][0-9a-fA-F][^0-9a-fA-F]`},
		{`[]a]\p{L}\x{41}a+?`, `[\]a]\p{L}\x{41}a+?`},
		{`(?:a)(?=b)(?<n>c)`, `(?:a)(?=b)(?<n>c)`},
		{`\p{N}{1,3}x{2}}+{a}{,2}`, `\p{N}{1,3}x{2}}+{a}{0,2}`},
	}
	for _, c := range cases {
		got, err := translateOnig(c.in)
		if err != nil || got != c.want {
			t.Errorf("translateOnig(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`a++`, `a*+`, `a?+`, `a{2,}+b`, `[a[b]]`, `[a&&b]`, `[\W]`, `[ab`, `ab\`} {
		if got, err := translateOnig(bad); err == nil {
			t.Errorf("translateOnig(%q) = %q, want an error", bad, got)
		}
	}
}
