package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchText is about 64 KiB of English-like text with many distinct words, numbers,
// punctuation and some non-ASCII, so the word cache does not make it trivial.
func benchText() string {
	rng := rand.New(rand.NewPCG(1, 2))
	syll := []string{"ka", "to", "re", "the", "in", "ou", "ng", "str", "e", "a", "ly", "ed", "ion", "é", "ü"}
	var sb strings.Builder
	for sb.Len() < 64<<10 {
		n := 1 + rng.IntN(4)
		for k := 0; k < n; k++ {
			sb.WriteString(syll[rng.IntN(len(syll))])
		}
		switch r := rng.IntN(20); {
		case r == 0:
			fmt.Fprintf(&sb, " %d", rng.IntN(100000))
		case r == 1:
			sb.WriteString(".\n")
		case r == 2:
			sb.WriteString(", ")
		case r == 3:
			sb.WriteString(" 日本語 ")
		default:
			sb.WriteByte(' ')
		}
	}
	return sb.String()
}

// BenchmarkEncode reports Encode throughput in tokens/s on a 64 KiB text, with a warm
// word cache (steady state) and with the cache cleared before every call.
func BenchmarkEncode(b *testing.B) {
	text := benchText()
	for _, fam := range []string{"llama3", "gpt2", "llama2"} {
		for _, cold := range []bool{false, true} {
			name := fam + "/warm"
			if cold {
				name = fam + "/cold"
			}
			b.Run(name, func(b *testing.B) {
				tok := loadFamily(b, fam)
				b.SetBytes(int64(len(text)))
				tokens := 0
				for b.Loop() {
					if cold {
						b.StopTimer()
						m := tok.model.(*bpe)
						m.mu.Lock()
						clear(m.cache)
						m.mu.Unlock()
						b.StartTimer()
					}
					ids, err := tok.Encode(text, false)
					if err != nil {
						b.Fatal(err)
					}
					tokens += len(ids)
				}
				b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}

// processCPU returns the CPU time this process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds the process CPU time per operation since start, a figure that other
// load on a shared machine disturbs much less than the wall-clock ns/op.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkSplitFallback compares each hand-written scanner with the regexp2 fallback
// compiled from the same regex text: the Split pre-tokenizer alone on the 64 KiB text, and
// Encode of the llama3 test tokenizer (warm word cache) with either one in its Split.
// Record the ratio in BENCHMARKS.md with:
// go test -run '^$' -bench SplitFallback -benchtime 20x -count 3 ./tokenizer/
func BenchmarkSplitFallback(b *testing.B) {
	text := benchText()
	names := map[splitPattern]string{patternGPT2: "gpt2", patternLlama3: "llama3", patternQwen2: "qwen2"}
	impls := func(b *testing.B, k splitPattern, regex string) []struct {
		name string
		m    matcher
	} {
		re, err := compileRegex(regex)
		if err != nil {
			b.Fatal(err)
		}
		return []struct {
			name string
			m    matcher
		}{{"scanner", k}, {"regexp2", re}}
	}
	for _, k := range knownRegexes {
		for _, impl := range impls(b, k.p, k.regex) {
			b.Run("split/"+names[k.p]+"/"+impl.name, func(b *testing.B) {
				p := preSplit{m: impl.m, behavior: behIsolated}
				b.SetBytes(int64(len(text)))
				cpu := processCPU()
				for b.Loop() {
					p.preTokenize([]word{{text, true}})
				}
				reportCPU(b, cpu)
			})
		}
	}
	for _, impl := range impls(b, patternLlama3, regexLlama3) {
		b.Run("encode/llama3/"+impl.name, func(b *testing.B) {
			tok := loadFamily(b, "llama3")
			seq := tok.pre.(preSequence)
			tok.pre = preSequence{preSplit{m: impl.m, behavior: behIsolated}, seq[1]}
			b.SetBytes(int64(len(text)))
			tokens := 0
			if _, err := tok.Encode(text, false); err != nil { // warm the word cache
				b.Fatal(err)
			}
			cpu := processCPU()
			for b.Loop() {
				ids, err := tok.Encode(text, false)
				if err != nil {
					b.Fatal(err)
				}
				tokens += len(ids)
			}
			reportCPU(b, cpu)
			b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
