// Command stepbench measures a training step of LR-LoRA against plain LoRA on the same
// model and batches, side by side: step time (median after a warmup step) and peak RSS
// (VmHWM), each method in its own child process so that peaks do not mix.
//
//	go run ./train/bench/stepbench                       # small Llama, 2×256 tokens
//	go run ./train/bench/stepbench -preset tiny -steps 20 -rounds 3
//	go run ./train/bench/stepbench -batch 1 -gemms        # each projection GEMM alone
//	go run ./train/bench/stepbench -batch 1 -spread 0.1   # from a trained-looking adapter
//	go run ./train/bench/stepbench -methods lrlora,lrlora-recompute  # model.recompute_delta
//	go run ./train/bench/stepbench -batch 1 -accum 4      # 4 micro-batches per optimizer step
//	go run ./train/bench/stepbench -batch 1 -accum 4 -methods lrlora-permicro,lrlora
//
// By default both methods start as a run does (B = 0), where LR-LoRA's φ keeps its K
// terms (phiop tabulates only an M spread over its table's intervals); -spread σ starts
// both from lora_B ~ N(0, σ²) and φ amplitudes ~ N(0, (σ/2)²), the steady state of a
// run under way.
//
// A method name with the suffix -recompute runs that method with model.recompute_delta
// (LR-LoRA layers recompute B·A and W0 + ΔW in backward instead of keeping them); with
// the suffix -permicro, with model.delta_per_step off (ΔW formed, and φ run, once per
// micro-batch instead of once per optimizer step; it matters only with -accum > 1).
//
// Each child runs train.Run for -steps optimizer steps: the alpaca_tiny task packed into
// sequences of -seq tokens, -accum micro-batches of -batch sequences per step, adapters
// of rank -r on all seven projections, K = 50 for lrlora.
//
// Beside the measured LR-LoRA/LoRA ratio it prints the FLOP model's bound for the same
// model and batch (bench/flops): FLOPs(LR-LoRA)/FLOPs(LoRA), the step-time ratio if both
// ran at the same FLOP rate. The report's ratio line is
//
//	lrlora/lora: step time ×M (median), ×F (min); peak RSS ×P; FLOP bound ×B; kernel-time bound ×K; peak tensors ×T
//
// which `make bench` (bench/all) reads, followed by the mean steps, their ratio and the
// ratio of each round's two children. The kernel-time bound (kernels.go; with the
// default -methods, unless -kernel-model=false) puts each counted part of the step at
// the time its kernel takes alone, φ's included: a measured ratio above it is time
// LR-LoRA spends outside its kernels.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/bench/flops"
	"github.com/lrtrain/lrtrain/model/hfinit"
	"github.com/lrtrain/lrtrain/phiop"
	"github.com/lrtrain/lrtrain/train"
)

type result struct {
	Method     string    `json:"method"`
	StepS      []float64 `json:"step_s"`
	PeakRSSMiB float64   `json:"peak_rss_mib"`
	// PeakTensorMiB is the most live CPU tensors held at once during the run.
	PeakTensorMiB float64 `json:"peak_tensor_mib"`
	Params        int64   `json:"params"`
	// PhiTabulated counts the φ passes (forward and backward) that took phiop's table,
	// of PhiPasses in all.
	PhiTabulated int64 `json:"phi_tabulated"`
	PhiPasses    int64 `json:"phi_passes"`
}

func main() {
	if err := train.ExecWithThreadEnv(); err != nil { // the thread pools' sleeping idle policy, as lrtrain's
		log.Print(err)
	}
	preset := flag.String("preset", "small", "hfinit preset of the Llama")
	batch := flag.Int("batch", 2, "sequences per micro-batch")
	accum := flag.Int("accum", 1, "micro-batches per optimizer step (train.grad_accum_steps)")
	seq := flag.Int("seq", 256, "tokens per sequence (packed)")
	steps := flag.Int("steps", 5, "optimizer steps per method (the first is not timed)")
	rank := flag.Int("r", 8, "adapter rank")
	methods := flag.String("methods", "lora,lrlora", "methods to compare")
	rounds := flag.Int("rounds", 1, "rounds of all methods, interleaved (step times pool over rounds; peak RSS is the highest)")
	gemms := flag.Bool("gemms", false, "time each adapted projection's GEMMs alone at -batch × -seq tokens, instead of the steps")
	child := flag.String("child", "", "internal: run one method against -model")
	dataPath := flag.String("data", "data/testdata/alpaca_tiny_train.json", "alpaca_json training file")
	modelDir := flag.String("model", "", "internal: model directory")
	kernels := flag.Bool("kernel-model", true, "with -methods lora,lrlora, time each kernel of the step alone first and print the kernel-time model's bound (kernels.go)")
	spread := flag.Float64("spread", 0, "start from a trained-looking adapter: lora_B ~ N(0, σ²), φ amplitudes ~ N(0, (σ/2)²) (0: the default start, B = 0)")
	flag.Parse()
	if *child != "" {
		if err := runChild(*child, *modelDir, *dataPath, *batch, *accum, *seq, *steps, *rank, *spread); err != nil {
			log.Fatal(err)
		}
		return
	}
	src, err := filepath.Abs(*dataPath)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := os.Stat(src); err != nil {
		log.Fatalf("%v (run from the repository root, or pass -data)", err)
	}
	dir, err := os.MkdirTemp("", "stepbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	md := filepath.Join(dir, "model")
	if _, err := hfinit.Write(md, hfinit.Options{Arch: "llama", Preset: *preset, Seed: 1}); err != nil {
		log.Fatal(err)
	}
	tokens := fmt.Sprintf("%d×%d", *batch, *seq)
	if *accum > 1 {
		tokens = fmt.Sprintf("%d micro-batches of %s", *accum, tokens)
	}
	fmt.Printf("llama %s, %s tokens per step, r = %d, all seven projections, %d steps, %d threads\n",
		*preset, tokens, *rank, *steps, phiop.InitThreads())
	opts := train.DefaultOptions()
	fc, err := flops.FromHF(filepath.Join(md, "config.json"), *rank, opts.Adapter.Phi.K, opts.Adapter.TargetModules.Names)
	if err != nil {
		log.Fatal(err)
	}
	// The kernels are timed under the CPU allocator a training run installs (train.Run):
	// its cached blocks spare each product's output the page faults of fresh memory.
	if _, err := phiop.InstallCachingAllocatorFromEnv(); err != nil {
		log.Fatal(err)
	}
	if *gemms {
		if err := runGEMMs(fc, int64(*batch**seq)); err != nil {
			log.Fatal(err)
		}
		return
	}
	bound, err := printFLOPs(fc, flops.Batch{B: *batch, T: *seq, Accum: *accum})
	if err != nil {
		log.Fatal(err)
	}
	var km kernelParts
	if *kernels && *methods == "lora,lrlora" {
		if km, err = kernelModel(fc, flops.Batch{B: *batch, T: *seq, Accum: *accum}, *spread); err != nil {
			log.Fatal(err)
		}
	}
	byMethod := map[string]*result{}
	roundMeans := map[string][]float64{} // each child's mean step, by method, in round order
	var order []string
	for round := 0; round < *rounds; round++ {
		for _, m := range strings.Split(*methods, ",") {
			cmd := exec.Command(os.Args[0], "-child", m, "-model", md, "-data", src, "-batch", strconv.Itoa(*batch),
				"-accum", strconv.Itoa(*accum), "-seq", strconv.Itoa(*seq), "-steps", strconv.Itoa(*steps), "-r", strconv.Itoa(*rank),
				"-spread", strconv.FormatFloat(*spread, 'g', -1, 64))
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				log.Fatalf("%s: %v", m, err)
			}
			var r result
			if err := json.Unmarshal(out, &r); err != nil {
				log.Fatalf("%s: %v (%q)", m, err, out)
			}
			roundMeans[m] = append(roundMeans[m], mean(r.StepS))
			if p, ok := byMethod[m]; ok {
				p.StepS = append(p.StepS, r.StepS...)
				p.PhiTabulated += r.PhiTabulated
				p.PhiPasses += r.PhiPasses
				p.PeakRSSMiB = max(p.PeakRSSMiB, r.PeakRSSMiB)
				p.PeakTensorMiB = max(p.PeakTensorMiB, r.PeakTensorMiB)
			} else {
				byMethod[m], order = &r, append(order, m)
			}
		}
	}
	var results []result
	for _, m := range order {
		results = append(results, *byMethod[m])
	}
	fmt.Printf("%-8s %12s %12s %14s %18s %12s\n", "method", "step (med)", "step (min)", "peak RSS MiB", "peak tensors MiB", "params")
	for _, r := range results {
		fmt.Printf("%-8s %11.3fs %11.3fs %14.1f %18.1f %12d\n", r.Method, median(r.StepS), slices.Min(r.StepS), r.PeakRSSMiB, r.PeakTensorMiB, r.Params)
	}
	if len(results) == 2 {
		a, b := results[0], results[1]
		fmt.Printf("%s/%s: step time ×%.3f (median), ×%.3f (min); peak RSS ×%.3f", b.Method, a.Method,
			median(b.StepS)/median(a.StepS), slices.Min(b.StepS)/slices.Min(a.StepS), b.PeakRSSMiB/a.PeakRSSMiB)
		if a.Method == "lora" && b.Method == "lrlora" {
			// The bound counts φ as the passes ran: K terms per entry unless every one was
			// tabulated (phiop keeps the K terms while M lies within one table interval,
			// as it does for the first steps from B = 0).
			pick := bound.kterm
			if b.PhiTabulated > 0 && b.PhiTabulated == b.PhiPasses {
				pick = bound.tabulated
			}
			fmt.Printf("; FLOP bound ×%.3f", pick)
			if km.ok {
				fmt.Printf("; kernel-time bound ×%.3f", km.bound())
			}
		}
		if a.PeakTensorMiB > 0 {
			fmt.Printf("; peak tensors ×%.3f\n", b.PeakTensorMiB/a.PeakTensorMiB)
		} else { // LRTRAIN_CPU_CACHE_MB=0: libtorch's own allocator counts nothing
			fmt.Println("; peak tensors n/a (not counted: LRTRAIN_CPU_CACHE_MB=0)")
		}
		if b.Method == "lrlora" {
			fmt.Printf("lrlora: %d of %d φ passes tabulated\n", b.PhiTabulated, b.PhiPasses)
		}
		if km.ok && a.Method == "lora" && b.Method == "lrlora" {
			km.beyond(median(a.StepS), median(b.StepS))
		}
		// Means are steadier than medians when one method's steps are bimodal, and a
		// round's ratio pairs two children that ran back to back, under about the same load.
		fmt.Printf("step means: %s %.3fs, %s %.3fs; %s/%s ×%.3f (mean); per round ×", a.Method, mean(a.StepS),
			b.Method, mean(b.StepS), b.Method, a.Method, mean(b.StepS)/mean(a.StepS))
		for i, ma := range roundMeans[a.Method] {
			if i > 0 {
				fmt.Print(", ×")
			}
			fmt.Printf("%.3f", roundMeans[b.Method][i]/ma)
		}
		fmt.Println()
	}
}

// bounds are FLOPs(LR-LoRA)/FLOPs(LoRA) with φ counted per K term and per table entry.
type bounds struct{ kterm, tabulated float64 }

// printFLOPs prints the FLOP model of one step of each method (φ by its K terms) and
// returns the bound both ways.
func printFLOPs(c flops.Config, b flops.Batch) (bounds, error) {
	c.PhiTabulated = false
	lo, err := flops.Step(c, b, flops.LoRA)
	if err != nil {
		return bounds{}, fmt.Errorf("stepbench: FLOP model: %w", err)
	}
	lr, err := flops.Step(c, b, flops.LRLoRA)
	if err != nil {
		return bounds{}, fmt.Errorf("stepbench: FLOP model: %w", err)
	}
	tc := c
	tc.PhiTabulated = true
	lt, err := flops.Step(tc, b, flops.LRLoRA)
	if err != nil {
		return bounds{}, fmt.Errorf("stepbench: FLOP model: %w", err)
	}
	const g = 1e9
	fmt.Printf("FLOP model (GFLOP per step): lora %.3g; lrlora %.3g = projections %.3g + B·A, ∂B, ∂A %.3g + φ %.3g "+
		"(K = %d, %d + %d FLOPs per term) + Gᵀ·x %.3g + attention %.3g + head %.3g; bound lrlora/lora ×%.3f "+
		"(both at the same FLOP rate; φ tabulated, %d + %d per entry: ×%.3f)\n", lo.Total()/g, lr.Total()/g,
		lr.Projections/g, lr.Adapter/g, lr.Phi/g, c.K, flops.PhiForwardPerTerm, flops.PhiBackwardPerTerm,
		lr.DeltaGrad/g, lr.Attention/g, lr.Head/g, lr.Total()/lo.Total(),
		flops.PhiTabulatedForward, flops.PhiTabulatedBackward, lt.Total()/lo.Total())
	return bounds{kterm: lr.Total() / lo.Total(), tabulated: lt.Total() / lo.Total()}, nil
}

func runChild(method, modelDir, src string, batch, accum, seq, steps, rank int, spread float64) error {
	o := train.DefaultOptions()
	o.Model.Path = modelDir
	parts := strings.Split(method, "-") // the method, then its suffixes in any order
	m, err := adapter.ParseMethod(parts[0])
	if err != nil {
		return err
	}
	o.Adapter.Method, o.Adapter.R = m, rank
	for _, suffix := range parts[1:] {
		switch suffix {
		case "recompute":
			o.Model.RecomputeDelta = true
		case "permicro":
			o.Model.DeltaPerStep = false
		default:
			return fmt.Errorf("stepbench: method %q: unknown suffix -%s (want -recompute, -permicro)", method, suffix)
		}
	}
	o.Data.Format = "alpaca_json"
	o.Data.Train = []string{src}
	o.Data.MaxLen, o.Data.Packing = seq, true
	o.Train.MaxSteps, o.Train.MicroBatchSize, o.Train.GradAccumSteps = steps, batch, max(accum, 1)
	o.Train.LogEvery, o.Checkpoint.Every, o.Checkpoint.Resume = 0, 0, "never"
	dir, err := os.MkdirTemp("", "stepbench-run")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	o.Output.Dir = dir
	var r result
	r.Method = method
	hook := func(sm train.StepMetrics) {
		if sm.Step > 1 {
			r.StepS = append(r.StepS, sm.StepSeconds)
		}
	}
	begin := time.Now()
	env := train.Env{Console: io.Discard, Hooks: train.Hooks{Step: hook}}
	if spread > 0 {
		env.InitAdapters = spreadInit(spread)
	}
	res, err := train.Run(context.Background(), o, env)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s: %d steps in %s\n", method, steps, time.Since(begin).Round(time.Millisecond))
	if r.PeakRSSMiB, err = statusKiB("VmHWM:"); err != nil {
		return err
	}
	r.PeakRSSMiB /= 1024
	r.PeakTensorMiB = res.PeakTensorMiB
	s, err := train.OpenCheckpoint(filepath.Join(dir, "checkpoints", fmt.Sprintf("step-%06d", steps)))
	if err != nil {
		return err
	}
	r.Params = s.Manifest.TrainableParameters
	r.PhiTabulated, r.PhiPasses = phiop.TabulatedCalls(), phiop.Passes()
	return json.NewEncoder(os.Stdout).Encode(r)
}

func statusKiB(field string) (float64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			return strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
