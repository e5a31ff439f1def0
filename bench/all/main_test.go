package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const doc = `# Benchmarks

<!-- bench:header begin -->
old header
<!-- bench:header end -->

Prose before.

<!-- bench:phi-fused begin -->
old phi table
<!-- bench:phi-fused end -->

Prose between, kept.

<!-- bench:phi-overhead begin -->
old overhead
<!-- bench:phi-overhead end -->
<!-- bench:step begin -->
old step
<!-- bench:step end -->
<!-- bench:dpscale begin -->
old dpscale
<!-- bench:dpscale end -->
<!-- bench:fused-head begin -->
old fused head
<!-- bench:fused-head end -->
<!-- bench:allreduce begin -->
old allreduce
<!-- bench:allreduce end -->
<!-- bench:tokenizer begin -->
old tokenizer
<!-- bench:tokenizer end -->

Prose after.
`

// Canned outputs in the formats the commands print.
var canned = map[string]string{
	"./phiop/^BenchmarkPhi$": `goos: linux
BenchmarkPhi/fused/d=1024-2         	       5	  23700000 ns/op	         7.7 fwd-ms	        15.7 bwd-ms	        21.0 best-ms	  44700000 elem/s	        13.0 peak-MiB
BenchmarkPhi/naive/d=1024-2         	       5	1539000000 ns/op	       500.0 fwd-ms	      1039 bwd-ms	      1400 best-ms	    681000 elem/s	      2209 peak-MiB
BenchmarkPhi/fused/d=4096-2         	       5	 407000000 ns/op	       134.0 fwd-ms	       266.0 bwd-ms	       390.0 best-ms	  42000000 elem/s	       192.0 peak-MiB
--- SKIP: BenchmarkPhi/naive/d=4096
    bench_test.go:107: naive at 4096², K=50: one (…,K) float32 tensor is 3.12 GiB; more
PASS
`,
	"./phiop/^BenchmarkOverheadRatio$": `BenchmarkOverheadRatio/d=1024-2  3  550000000 ns/op  45.8 phi-ms  503.0 matmul-ms  9.1 overhead-%  8.2 best-overhead-%  60.5 kterm-phi-ms  12.0 kterm-overhead-%  11.5 kterm-best-overhead-%
`,
	"./train/bench/stepbench": `llama small, 2×256 tokens per step, r = 8, all seven projections, 6 steps, 2 threads
FLOP model (GFLOP per step): lora 64.64; lrlora 116.4 = …; bound lrlora/lora ×1.801 (both at the same FLOP rate)
kernel-time model (s per step, …): lora 1.000 = …; lrlora 1.500 = …; bound lrlora/lora ×1.500
method     step (med)   step (min)   peak RSS MiB   peak tensors MiB       params
lora          1.450s       1.400s          893.0              701.5      3784704
lrlora        1.740s       1.680s         1039.0              822.0      3790304
lrlora/lora: step time ×1.200 (median), ×1.200 (min); peak RSS ×1.164; FLOP bound ×1.801; kernel-time bound ×1.500; peak tensors ×1.172
beyond the kernels (median step − kernel-time model): lora 0.450s, lrlora 0.240s; lrlora's excess -0.210s
`,
	"./bench/dpscale":                   "work directory: /tmp/x\nranks  step_s\n    1   3.040\nbest: scaling ratio 1.78\n",
	"./dist/collective/bench/allreduce": "      size  copy GB/s\n      1KiB     102.00\n",
	"-bench/Encode":                     "BenchmarkEncode/llama3-2  40  6400000 ns/op  10.24 MB/s  250000 tokens/s\n",
	"-bench/FusedHead":                  "BenchmarkFusedHead/small/chunk=0-2  3  160000000 ns/op  90.0 logits-ms/op  70.0 fused-ms/op  0.778 fused/logits\n",
}

func fakeRunner(calls *[][]string) runner {
	return func(_ context.Context, argv []string) (string, error) {
		*calls = append(*calls, argv)
		for key, out := range canned {
			if matches(argv, key) {
				return out, nil
			}
		}
		return "", errors.New("no canned output")
	}
}

// matches says whether argv holds the key's parts (split at "/^" or "-bench/").
func matches(argv []string, key string) bool {
	line := strings.Join(argv, " ")
	switch {
	case strings.HasPrefix(key, "-bench/"):
		return strings.Contains(line, "-bench "+strings.TrimPrefix(key, "-bench/"))
	case strings.Contains(key, "/^"):
		i := strings.Index(key, "/^")
		return strings.Contains(line, key[:i+1]) && strings.Contains(line, "-bench "+key[i+1:])
	default:
		return strings.Contains(line, key+" ") || strings.HasSuffix(line, key)
	}
}

func testOptions(t *testing.T, names []string, quick bool) (options, string) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	return options{names: names, quick: quick, out: path, timeout: time.Minute, log: io.Discard, commit: "abc1234",
		load: func() string { return "1.00 / 2.00 / 3.00" },
		now:  func() time.Time { clock = clock.Add(30 * time.Second); return clock }}, path
}

func TestQuickSectionsRewriteOnlyTheirBlocks(t *testing.T) {
	names, err := selectSections("step, phi-overhead")
	if err != nil {
		t.Fatal(err)
	}
	o, path := testOptions(t, names, true)
	var calls [][]string
	if err := regenerate(context.Background(), o, fakeRunner(&calls)); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 6 { // overhead, then step's two batches from B = 0 and from -spread and the accumulated one, in sections' order
		t.Fatalf("%d commands run, want 6: %q", len(calls), calls)
	}
	for _, c := range calls[1:] {
		if !strings.Contains(strings.Join(c, " "), "-preset tiny") {
			t.Errorf("-quick ran %q, not the tiny command", c)
		}
	}
	got := read(t, path)
	for _, keep := range []string{"old header", "old phi table", "old dpscale", "old fused head", "old allreduce", "old tokenizer",
		"Prose before.", "Prose between, kept.", "Prose after."} {
		if !strings.Contains(got, keep) {
			t.Errorf("%q was lost:\n%s", keep, got)
		}
	}
	for _, gone := range []string{"old overhead", "old step"} {
		if strings.Contains(got, gone) {
			t.Errorf("%q not replaced", gone)
		}
	}
	wantAll(t, got,
		"| 1024 | 45.8 ms | 503 ms | 9.10 % | 8.20 % | 60.5 ms | 12.0 / 11.5 % |",
		"| 2×32 | 1.450 s / 1.400 s | 1.740 s / 1.680 s | 1.200× | 1.200× | 1.801× | 0.67 | 1.500× | 0.80 | -0.210 s | 893.0 / 1039.0 MiB | 701.5 / 822.0 MiB |",
		"- 2×32: kernel-time model (s per step, …): lora 1.000 = …; lrlora 1.500 = …; bound lrlora/lora ×1.500",
		"| 2×32, B ~ N(0, 0.1²) | 1.450 s / 1.400 s |",
		"| 4 × 1×32 (micro-batches) | 1.450 s / 1.400 s |",
		"(-quick: tiny sizes, not a measurement)",
		"1.00 / 2.00 / 3.00 → 1.00 / 2.00 / 3.00",
		"- `go run ./train/bench/stepbench -preset tiny -batch 1 -seq 32 -steps 3`",
	)
	if n := len(blockNames(got)); n != 8 { // the header and seven sections
		t.Errorf("%d blocks after the rewrite, want 8", n)
	}
}

func TestFullRunWritesEveryBlockAndTheHeader(t *testing.T) {
	o, path := testOptions(t, sectionNames(), false)
	var calls [][]string
	if err := regenerate(context.Background(), o, fakeRunner(&calls)); err != nil {
		t.Fatal(err)
	}
	got := read(t, path)
	if strings.Contains(got, "old ") {
		t.Errorf("an old block survived a full run:\n%s", got)
	}
	wantAll(t, got,
		"`go test ./phiop/ -run '^$' -bench '^BenchmarkPhi$' -benchtime 3x`",
		"| 1024×1024 | 23.4 ms (7.70 / 15.7) | 21.0 ms | 44.7 M/s | 13.0 MiB | 1539 ms | 2209 MiB | 65.8× / 66.7× |",
		"| 4096×4096 | 400 ms (134 / 266) | 390 ms | 42.0 M/s | 192 MiB | skipped: naive at 4096², K=50: one (…,K) float32 tensor is 3.12 GiB | — | — |",
		"| BenchmarkEncode/llama3 | 40 | 6400000 | 10.2 | 250000 |",
		"```text\nranks  step_s\n", // the temporary path is left out
		"| BenchmarkFusedHead/small/chunk=0 | 3 | 160000000 | 90.0 | 70.0 | 0.778 |",
		"at commit abc1234: all 7 sections in ",
	)
}

func TestFailedSectionKeepsItsBlock(t *testing.T) {
	o, path := testOptions(t, []string{"tokenizer", "allreduce"}, false)
	failing := func(_ context.Context, argv []string) (string, error) {
		if strings.Contains(strings.Join(argv, " "), "tokenizer") {
			return "", errors.New("exit status 1")
		}
		return canned["./dist/collective/bench/allreduce"], nil
	}
	err := regenerate(context.Background(), o, failing)
	if err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Fatalf("err %v, want the tokenizer section named", err)
	}
	got := read(t, path)
	if !strings.Contains(got, "old tokenizer") || strings.Contains(got, "old allreduce") || !strings.Contains(got, "old header") {
		t.Errorf("want the failed block and the header kept, the other rewritten:\n%s", got)
	}
}

func TestReplaceBlockErrors(t *testing.T) {
	if _, err := replaceBlock("no markers", "step", "x"); err == nil {
		t.Error("missing markers: no error")
	}
	twice := doc + beginMarker("step") + "\n"
	if _, err := replaceBlock(twice, "step", "x"); err == nil {
		t.Error("two begin markers: no error")
	}
	reversed := endMarker("a") + "\n" + beginMarker("a") + "\n"
	if _, err := replaceBlock(reversed, "a", "x"); err == nil {
		t.Error("end before begin: no error")
	}
	got, err := replaceBlock(doc, "dpscale", "\n\nnew\n\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, beginMarker("dpscale")+"\nnew\n"+endMarker("dpscale")) {
		t.Errorf("body not trimmed to its own lines:\n%s", got)
	}
	if _, err := selectSections("step,nope"); err == nil {
		t.Error("unknown section: no error")
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// wantAll fails the test for each of wants that got does not contain.
func wantAll(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}
