package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// childEnv carries a child's runOpts (JSON): the process measures lrtrain and exits.
const childEnv = "MODELSPEED_CHILD"

func main() {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "modelspeed child:", err)
			os.Exit(1)
		}
		return
	}
	b := bench{Out: os.Stdout}
	flag.StringVar(&b.Preset, "preset", "qwen2-0.5b", "hfinit preset whose layer shapes the qwen2 checkpoint has")
	flag.IntVar(&b.Layers, "layers", 4, "number of decoder layers (0: the preset's)")
	flag.IntVar(&b.Batch, "batch", 1, "sequences per step")
	flag.IntVar(&b.Seq, "seq", 256, "tokens per sequence")
	flag.IntVar(&b.Rank, "rank", 16, "adapter rank r")
	flag.IntVar(&b.K, "k", 50, "LR-LoRA basis functions K")
	flag.IntVar(&b.Threads, "threads", 2, "libtorch intra-op threads on both sides")
	flag.IntVar(&b.Warmup, "warmup", 1, "untimed steps per process (the first is the check step)")
	flag.IntVar(&b.Steps, "steps", 5, "timed steps per process")
	flag.IntVar(&b.SlowSteps, "slow-steps", 2, "timed steps of PyTorch's lrlora variants (φ in torch ops: about a minute a step)")
	flag.IntVar(&b.Rounds, "rounds", 1, "times each lrtrain/PyTorch pair of processes runs, alternating")
	methods := flag.String("methods", "lora,lrlora", "methods measured on both sides")
	extra := flag.String("torch-extra", "lora-peft", "PyTorch-only methods (lora-peft, lrlora-naive; empty: none)")
	flag.StringVar(&b.WorkDir, "dir", filepath.Join(os.TempDir(), "lrtrain-modelspeed"), "work directory (the checkpoint is reused)")
	flag.StringVar(&b.Python, "python", "/usr/bin/python3", "Python with torch")
	flag.StringVar(&b.Script, "script", defaultScript(), "torch_ref.py")
	flag.StringVar(&b.CPUProfile, "cpuprofile", "", "write a Go CPU profile of lrtrain's timed steps to this file (method appended)")
	flag.Parse()
	b.Seed = 1
	b.Methods = splitList(*methods)
	b.TorchOnly = splitList(*extra)
	if err := b.run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// defaultScript is torch_ref.py next to this file's source.
func defaultScript() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("bench", "modelspeed", "torch_ref.py")
	}
	return filepath.Join(filepath.Dir(file), "torch_ref.py")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// bench is one invocation: the workload, how to measure it and where to print.
type bench struct {
	workload
	Threads, Warmup, Steps, Rounds int
	SlowSteps                      int // timed steps of PyTorch's lrlora variants
	Methods, TorchOnly             []string
	Python, Script, CPUProfile     string
	Out                            io.Writer
}

func (b *bench) run() error {
	cfg, err := b.prepare()
	if err != nil {
		return err
	}
	fmt.Fprintf(b.Out, "Qwen2 (%s shapes): hidden %d, %d heads, %d KV heads, intermediate %d, vocab %d, %d layers, float32\n",
		b.Preset, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.IntermediateSize, cfg.VocabSize, cfg.NumHiddenLayers)
	fmt.Fprintf(b.Out, "adapters on %s, r = %d, α = %d, K = %d; batch %d×%d tokens; %d threads; %d warm-up + %d timed steps per process, %d round(s)\n\n",
		strings.Join(targetModules, ","), b.Rank, 2*b.Rank, b.K, b.Batch, b.Seq, b.Threads, b.Warmup, b.Steps, b.Rounds)
	got := map[string]*result{} // by label, steps pooled over rounds
	var order []string
	add := func(r *result) {
		if old, ok := got[r.label()]; ok {
			old.FwdMs, old.BwdMs = append(old.FwdMs, r.FwdMs...), append(old.BwdMs, r.BwdMs...)
			old.StepMs = append(old.StepMs, r.StepMs...)
			old.PeakKB, old.TrainPeakKB = max(old.PeakKB, r.PeakKB), max(old.TrainPeakKB, r.TrainPeakKB)
			return
		}
		got[r.label()] = r
		order = append(order, r.label())
	}
	for round := 0; round < max(b.Rounds, 1); round++ {
		for _, method := range b.Methods {
			ours, theirs, err := b.pair(method, round%2 == 0)
			if err != nil {
				return err
			}
			if round == 0 {
				if err := b.check(ours, theirs); err != nil {
					return err
				}
			}
			add(ours)
			add(theirs)
		}
		for _, method := range b.TorchOnly {
			extra, err := b.torch([]string{method}, b.stepsOf(method))
			if err != nil {
				return err
			}
			r := extra[0]
			ref := got["lrtrain/"+strings.TrimSuffix(strings.TrimSuffix(r.Method, "-peft"), "-naive")]
			if round == 0 && ref != nil {
				if err := b.check(ref, r); err != nil {
					return err
				}
			}
			add(r)
		}
	}
	fmt.Fprintln(b.Out)
	if err := saveResults(filepath.Join(b.WorkDir, "results.json"), got, order); err != nil {
		return err
	}
	return printTable(b.Out, got, order)
}

// check prints how r agrees with ref (the same step on the other side) and fails
// loudly when they disagree.
func (b *bench) check(ref, r *result) error {
	desc, err := agreement(ref, r)
	fmt.Fprintf(b.Out, "check %-7s %s\n", r.Method+":", desc)
	if err != nil {
		return fmt.Errorf("CHECK FAILED: %w", err)
	}
	return nil
}

// pair measures a method on both sides, lrtrain first or PyTorch first (rounds
// alternate the order, so that neither side always runs on a machine the other warmed).
func (b *bench) pair(method string, lrtrainFirst bool) (ours, theirs *result, err error) {
	runOurs := func() error { ours, err = b.lrtrainChild(method); return err }
	runTheirs := func() error {
		rs, err := b.torch([]string{method}, b.stepsOf(method))
		if err == nil {
			theirs = rs[0]
		}
		return err
	}
	first, second := runOurs, runTheirs
	if !lrtrainFirst {
		first, second = runTheirs, runOurs
	}
	if err := first(); err != nil {
		return nil, nil, err
	}
	if err := second(); err != nil {
		return nil, nil, err
	}
	return ours, theirs, nil
}

// lrtrainChild measures one method in a fresh process (this program, re-executed), so
// that its peak RSS is its own.
func (b *bench) lrtrainChild(method string) (*result, error) {
	o := runOpts{ModelDir: b.modelDir(), Adapters: b.adaptersPath(), Inputs: b.inputsPath(),
		Method: method, Threads: b.Threads, Warmup: b.Warmup, Steps: b.Steps}
	if b.CPUProfile != "" {
		o.CPUProfile = b.CPUProfile + "." + method
	}
	spec, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(b.childEnv(), childEnv+"="+string(spec))
	rs, err := runMeasurer(cmd, "lrtrain "+method)
	if err != nil {
		return nil, err
	}
	return rs[0], nil
}

// stepsOf is the number of timed steps of a PyTorch method.
func (b *bench) stepsOf(method string) int {
	if strings.HasPrefix(method, "lrlora") && b.SlowSteps > 0 {
		return min(b.SlowSteps, b.Steps)
	}
	return b.Steps
}

// torch runs torch_ref.py once for the methods, in order.
func (b *bench) torch(methods []string, steps int) ([]*result, error) {
	cmd := exec.Command(b.Python, b.Script, "--model", b.modelDir(), "--adapters", b.adaptersPath(),
		"--inputs", b.inputsPath(), "--methods", strings.Join(methods, ","), "--threads", strconv.Itoa(b.Threads),
		"--warmup", strconv.Itoa(b.Warmup), "--steps", strconv.Itoa(steps))
	cmd.Env = b.childEnv()
	rs, err := runMeasurer(cmd, "pytorch "+strings.Join(methods, ","))
	if err != nil {
		return nil, err
	}
	if len(rs) != len(methods) {
		return nil, fmt.Errorf("modelspeed: torch_ref.py printed %d results for %d methods", len(rs), len(methods))
	}
	return rs, nil
}

// childEnv is the environment of both sides: the same OpenMP thread count.
func (b *bench) childEnv() []string {
	return append(os.Environ(), "OMP_NUM_THREADS="+strconv.Itoa(b.Threads))
}

func runMeasurer(cmd *exec.Cmd, what string) ([]*result, error) {
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("modelspeed: %s: %w\n%s", what, err, stdout.Bytes())
	}
	return parseResults(stdout.Bytes())
}

// runChild is the child process: measure lrtrain and print the result line.
func runChild(spec string) error {
	var o runOpts
	if err := json.Unmarshal([]byte(spec), &o); err != nil {
		return fmt.Errorf("%s: %w", childEnv, err)
	}
	r, err := measureLRTrain(o)
	if err != nil {
		return err
	}
	return printResult(r)
}
