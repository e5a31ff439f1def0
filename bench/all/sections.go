package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// run is one command of a section: the full command line and the one -quick uses.
type run struct{ argv, quickV []string }

// section is one generated block of BENCHMARKS.md: its marker name, the commands it
// runs side by side, one after the other, and how their output becomes markdown.
type section struct {
	name   string
	runs   []run
	render func([]result) (string, error)
}

// result is what one run produced.
type result struct {
	run
	argv       []string // what was run (argv or quickV)
	out        string   // stdout
	loadBefore string   // /proc/loadavg's first three fields
	loadAfter  string
	seconds    float64
}

// sections are the measurements `make bench` regenerates, in the order they run. Each
// full command's expected time on the 2-core development machine is noted; the whole
// stays under 20 minutes there.
var sections = []section{
	{name: "phi-fused", render: renderPhi, runs: []run{{ // ≈ 1 min: naive at 1024² is 1.5 s per iteration
		argv:   []string{"go", "test", "./phiop/", "-run", "^$", "-bench", "^BenchmarkPhi$", "-benchtime", "3x"},
		quickV: []string{"go", "test", "./phiop/", "-run", "^$", "-bench", "^BenchmarkPhi$/fused/d=1024$", "-benchtime", "1x"},
	}}},
	{name: "phi-overhead", render: renderOverhead, runs: []run{{ // ≈ 1 min: 4 layer steps of 5 s at d = 4096
		argv:   []string{"go", "test", "./phiop/", "-run", "^$", "-bench", "^BenchmarkOverheadRatio$", "-benchtime", "3x"},
		quickV: []string{"go", "test", "./phiop/", "-run", "^$", "-bench", "^BenchmarkOverheadRatio$/d=1024$", "-benchtime", "1x"},
	}}},
	{name: "step", render: renderStep, runs: []run{ // ≈ 2 + 1.5 + 2 + 1.5 min
		{argv: []string{"go", "run", "./train/bench/stepbench", "-batch", "2", "-seq", "256", "-steps", "6", "-rounds", "2"},
			quickV: []string{"go", "run", "./train/bench/stepbench", "-preset", "tiny", "-batch", "2", "-seq", "32", "-steps", "3"}},
		{argv: []string{"go", "run", "./train/bench/stepbench", "-batch", "1", "-seq", "256", "-steps", "6", "-rounds", "2"},
			quickV: []string{"go", "run", "./train/bench/stepbench", "-preset", "tiny", "-batch", "1", "-seq", "32", "-steps", "3"}},
		// ≈ 2 × 1 min: the same from a trained-looking adapter, where φ runs tabulated
		{argv: []string{"go", "run", "./train/bench/stepbench", "-batch", "2", "-seq", "256", "-steps", "6", "-rounds", "2", "-spread", "0.1"},
			quickV: []string{"go", "run", "./train/bench/stepbench", "-preset", "tiny", "-batch", "2", "-seq", "32", "-steps", "3", "-spread", "0.1"}},
		{argv: []string{"go", "run", "./train/bench/stepbench", "-batch", "1", "-seq", "256", "-steps", "6", "-rounds", "2", "-spread", "0.1"},
			quickV: []string{"go", "run", "./train/bench/stepbench", "-preset", "tiny", "-batch", "1", "-seq", "32", "-steps", "3", "-spread", "0.1"}},
		// ≈ 1.5 min: 4 micro-batches of 1×256 per optimizer step, ΔW formed once per step
		{argv: []string{"go", "run", "./train/bench/stepbench", "-batch", "1", "-seq", "256", "-accum", "4", "-steps", "5", "-rounds", "2"},
			quickV: []string{"go", "run", "./train/bench/stepbench", "-preset", "tiny", "-batch", "1", "-seq", "32", "-accum", "4", "-steps", "3"}},
	}},
	// ≈ 8.5 min: twelve runs of 6 steps of ~3 s, startup: 1 and 2 ranks, 2 ranks
	// splitting ΔW's per-step work (split_delta), and beside the sharded backbone (at
	// prefetch depths 0 and 1, its ranks reading each other's shards and, again, with
	// all-gathers) the two other ways to spend less memory (checkpointing,
	// recompute_delta)
	{name: "dpscale", render: renderText, runs: []run{{
		argv:   []string{"go", "run", "./bench/dpscale", "-preset", "small", "-steps", "6", "-rounds", "1", "-threads1", "1", "-split", "-shard", "-ckpt", "-recompute", "-shard-prefetch", "0,1", "-all-gather"},
		quickV: []string{"go", "run", "./bench/dpscale", "-preset", "tiny", "-steps", "3", "-warmup", "1", "-rounds", "1", "-threads1", "1", "-split", "-recompute"},
	}}},
	// ≈ 1 min: the causal LM head with the loss on the logits and computed in chunks,
	// alternating, at the small preset's and Qwen2-0.5B's shapes
	{name: "fused-head", render: renderGeneric, runs: []run{{
		argv:   []string{"go", "test", "./model/", "-run", "^$", "-bench", "FusedHead", "-benchtime", "3x"},
		quickV: []string{"go", "test", "./model/", "-run", "^$", "-bench", "FusedHead/small", "-benchtime", "1x"},
	}}},
	{name: "allreduce", render: renderText, runs: []run{{ // ≈ 1–2 min
		argv:   []string{"go", "run", "./dist/collective/bench/allreduce", "-ranks", "2,4", "-min", "1KiB", "-max", "256MiB"},
		quickV: []string{"go", "run", "./dist/collective/bench/allreduce", "-ranks", "2", "-min", "1KiB", "-max", "64KiB"},
	}}},
	{name: "tokenizer", render: renderGeneric, runs: []run{{ // ≈ 30 s
		argv:   []string{"go", "test", "-run", "^$", "-bench", "Encode", "-benchtime", "40x", "./tokenizer/"},
		quickV: []string{"go", "test", "-run", "^$", "-bench", "Encode", "-benchtime", "1x", "./tokenizer/"},
	}}},
}

// benchByName indexes parsed benchmark lines by name.
func benchByName(out string) (map[string]benchLine, map[string]string, error) {
	lines, skipped := parseGoBench(out)
	if len(lines) == 0 {
		return nil, nil, fmt.Errorf("bench: no benchmark result lines in the output")
	}
	m := map[string]benchLine{}
	for _, l := range lines {
		m[l.name] = l
	}
	return m, skipped, nil
}

var dimRE = regexp.MustCompile(`/d=(\d+)$`)

// dims lists the d=… values of the named benchmarks, in order of appearance.
func dims(out, prefix string) []string {
	var ds []string
	lines, skipped := parseGoBench(out)
	names := make([]string, 0, len(lines)+len(skipped))
	for _, l := range lines {
		names = append(names, l.name)
	}
	for n := range skipped {
		names = append(names, n)
	}
	for _, n := range names {
		if m := dimRE.FindStringSubmatch(n); m != nil && strings.HasPrefix(n, prefix) && !contains(ds, m[1]) {
			ds = append(ds, m[1])
		}
	}
	return ds
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// renderPhi: fused against naive per d (BenchmarkPhi/{fused,naive}/d=…).
func renderPhi(rs []result) (string, error) {
	m, skipped, err := benchByName(rs[0].out)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString("| M | fused fwd+bwd (fwd / bwd) | fused fastest | fused elements/s | fused peak | naive fwd+bwd | naive peak | speed-up (mean / fastest) |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, d := range dims(rs[0].out, "BenchmarkPhi/") {
		f, fok := m["BenchmarkPhi/fused/d="+d]
		nv, nok := m["BenchmarkPhi/naive/d="+d]
		row := []string{d + "×" + d, "—", "—", "—", "—", "not run (skipped by default; see below)", "—", "—"}
		if fok {
			row[1] = fmt.Sprintf("%s ms (%s / %s)", num(f.metrics["fwd-ms"]+f.metrics["bwd-ms"]), num(f.metrics["fwd-ms"]), num(f.metrics["bwd-ms"]))
			row[2], row[3], row[4] = num(f.metrics["best-ms"])+" ms", num(f.metrics["elem/s"]/1e6)+" M/s", num(f.metrics["peak-MiB"])+" MiB"
		}
		if reason, ok := skipped["BenchmarkPhi/naive/d="+d]; ok {
			row[5] = "skipped: " + strings.SplitN(reason, ";", 2)[0]
		}
		if nok {
			row[5] = num(nv.metrics["fwd-ms"]+nv.metrics["bwd-ms"]) + " ms"
			row[6] = num(nv.metrics["peak-MiB"]) + " MiB"
		}
		if fok && nok {
			row[7] = fmt.Sprintf("%s× / %s×", num((nv.metrics["fwd-ms"]+nv.metrics["bwd-ms"])/(f.metrics["fwd-ms"]+f.metrics["bwd-ms"])),
				num(nv.metrics["best-ms"]/f.metrics["best-ms"]))
		}
		sb.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return sb.String(), nil
}

// renderOverhead: φ against the layer's matmuls per d (BenchmarkOverheadRatio/d=…).
func renderOverhead(rs []result) (string, error) {
	m, _, err := benchByName(rs[0].out)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.WriteString("| d | φ fwd+bwd | layer matmuls | ratio (mean) | ratio (fastest iterations) | K-term φ | K-term ratio (mean / fastest) |\n|---|---|---|---|---|---|---|\n")
	for _, d := range dims(rs[0].out, "BenchmarkOverheadRatio/") {
		l, ok := m["BenchmarkOverheadRatio/d="+d]
		if !ok {
			continue
		}
		kterm, kratio := "–", "–" // the tabulated path's K-term comparison, when the benchmark reports it
		if v, ok := l.metrics["kterm-phi-ms"]; ok {
			kterm = num(v) + " ms"
			kratio = num(l.metrics["kterm-overhead-%"]) + " / " + num(l.metrics["kterm-best-overhead-%"]) + " %"
		}
		fmt.Fprintf(&sb, "| %s | %s ms | %s ms | %s %% | %s %% | %s | %s |\n", d, num(l.metrics["phi-ms"]), num(l.metrics["matmul-ms"]),
			num(l.metrics["overhead-%"]), num(l.metrics["best-overhead-%"]), kterm, kratio)
	}
	return sb.String(), nil
}

var (
	stepRowRE    = regexp.MustCompile(`(?m)^(lora|lrlora)\s+([0-9.]+)s\s+([0-9.]+)s\s+([0-9.]+)\s+([0-9.]+)\s+(\d+)\s*$`)
	stepRatioRE  = regexp.MustCompile(`lrlora/lora: step time ×([0-9.]+) \(median\), ×([0-9.]+) \(min\); peak RSS ×([0-9.]+); FLOP bound ×([0-9.]+)(?:; kernel-time bound ×([0-9.]+))?`)
	kernelLineRE = regexp.MustCompile(`(?m)^kernel-time model .*$`)
	beyondRE     = regexp.MustCompile(`lrlora's excess (-?[0-9.]+)s`)
	flopLineRE   = regexp.MustCompile(`(?m)^FLOP model .*$`)
)

// renderStep: stepbench's LoRA and LR-LoRA rows, their ratios, the FLOP bound and the
// kernel-time bound, one table row per run (tokens per step: micro-batches × sequences
// × tokens).
func renderStep(rs []result) (string, error) {
	var sb strings.Builder
	sb.WriteString("| tokens per step | LoRA step, median / fastest | LR-LoRA step, median / fastest | ratio, median | ratio, fastest | FLOP bound | fastest ÷ bound | kernel-time bound | median ÷ kernel-time bound | LR-LoRA beyond its kernels, less LoRA's | peak RSS LoRA / LR-LoRA | peak tensors LoRA / LR-LoRA |\n")
	sb.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var notes []string
	for _, r := range rs {
		label := flagValue(r.argv, "-batch", "2") + "×" + flagValue(r.argv, "-seq", "256")
		if acc := flagValue(r.argv, "-accum", "1"); acc != "1" {
			label = acc + " × " + label + " (micro-batches)"
		}
		if sp := flagValue(r.argv, "-spread", ""); sp != "" {
			label += ", B ~ N(0, " + sp + "²)"
		}
		rows := map[string][]string{}
		for _, m := range stepRowRE.FindAllStringSubmatch(r.out, -1) {
			rows[m[1]] = m[2:]
		}
		ratio := stepRatioRE.FindStringSubmatch(r.out)
		if rows["lora"] == nil || rows["lrlora"] == nil || ratio == nil {
			return "", fmt.Errorf("bench: stepbench %s: no lora/lrlora rows or ratio line in its output", label)
		}
		med, _ := strconv.ParseFloat(ratio[1], 64)
		fastest, _ := strconv.ParseFloat(ratio[2], 64)
		bound, _ := strconv.ParseFloat(ratio[4], 64)
		kernel, kernelRatio, excess := "–", "–", "–"
		if ratio[5] != "" {
			kb, _ := strconv.ParseFloat(ratio[5], 64)
			kernel, kernelRatio = ratio[5]+"×", fmt.Sprintf("%.2f", med/kb)
		}
		if m := beyondRE.FindStringSubmatch(r.out); m != nil {
			excess = m[1] + " s"
		}
		lo, lr := rows["lora"], rows["lrlora"]
		fmt.Fprintf(&sb, "| %s | %s s / %s s | %s s / %s s | %s× | %s× | %s× | %.2f | %s | %s | %s | %s / %s MiB | %s / %s MiB |\n", label,
			lo[0], lo[1], lr[0], lr[1], ratio[1], ratio[2], ratio[4], fastest/bound, kernel, kernelRatio, excess, lo[2], lr[2], lo[3], lr[3])
		if fl := flopLineRE.FindString(r.out); fl != "" {
			notes = append(notes, "- "+label+": "+fl)
		}
		if kl := kernelLineRE.FindString(r.out); kl != "" {
			notes = append(notes, "- "+label+": "+kl)
		}
	}
	if len(notes) > 0 {
		sb.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	return sb.String(), nil
}

// flagValue returns the argument after name in argv, or def (stepbench's default).
func flagValue(argv []string, name, def string) string {
	for i, a := range argv[:max(len(argv)-1, 0)] {
		if a == name {
			return argv[i+1]
		}
	}
	return def
}

// renderText: the command's own table, verbatim.
func renderText(rs []result) (string, error) {
	if strings.TrimSpace(rs[0].out) == "" {
		return "", fmt.Errorf("bench: no output")
	}
	return textBlock(rs[0].out), nil
}

// renderGeneric: every benchmark line with all its metrics.
func renderGeneric(rs []result) (string, error) {
	lines, _ := parseGoBench(rs[0].out)
	if len(lines) == 0 {
		return "", fmt.Errorf("bench: no benchmark result lines in the output")
	}
	return genericTable(lines), nil
}
