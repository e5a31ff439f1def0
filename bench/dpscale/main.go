// Command dpscale measures the training throughput (tokens/s) of 1 rank against 2
// data-parallel ranks (lrtrain launch --standalone, Gloo on CPU) on the same global
// batch, side by side in one invocation, and prints the scaling ratio.
//
//	go run ./bench/dpscale -preset small -steps 8 -rounds 2
//
// It builds lrtrain (or takes -lrtrain), writes a randomly initialised Llama of the
// preset, and runs, in alternation for -rounds rounds, `lrtrain train` with
// grad_accum_steps 2·A and `lrtrain launch --nproc-per-node 2` with grad_accum_steps A
// (micro_batch_size -micro), reading each run's metrics.jsonl. The first -warmup steps of
// every run are left out; throughput is the measured steps' tokens over their summed
// step times (startup, model loading and checkpointing are not counted). The single
// process gets OMP_NUM_THREADS = all CPUs, each of the two ranks half of them (the
// launcher's default), so both use the whole machine.
//
// With -shard a third run joins each round: 2 ranks with the frozen backbone sharded
// between them (dist.shard_group_size 2). Every run's peak resident memory and the peak
// of what its live CPU tensors held (rank 0's, peak_rss_mib and peak_cpu_tensor_mib of
// its "training finished" log line) are printed next to its throughput.
//
//	go run ./bench/dpscale -preset small -steps 6 -rounds 1 -shard
//
// -packing packs the examples into rows of exactly -max-len tokens, so that every
// micro-batch is the same work on every rank.
//
// -ranks N runs N ranks instead of 2 (grad_accum_steps 2·A/N, which must be whole);
// -shard-prefetch 0,1 runs one sharded run per dist.shard_prefetch depth. -ckpt adds
// the whole backbone with activation checkpointing (what sharding turns on), -recompute
// the whole backbone with model.recompute_delta (LR-LoRA layers recompute B·A and W0 + ΔW
// in backward instead of keeping them: the memory it saves without checkpointing) and,
// with -shard, a sharded run with it (blocks keep their graphs and backward regathers
// their weights instead of recomputing them), -no-keep
// each sharded run again with shard.EnvNoKeep=1; sharded rows add rank 0's all-gathers,
// the pass's wait for them and their time, per step.
//
//	go run ./bench/dpscale -preset small -steps 6 -rounds 1 -threads1 1 -shard -shard-prefetch 0,1
//	go run ./bench/dpscale -preset small -steps 6 -rounds 1 -threads1 1 -shard -ranks 4 -micro 1 -accum 2
//
// -ceiling measures the machine's own ceiling for N-process scaling: each round also
// starts -ranks independent `lrtrain train` processes at once, each configured and
// threaded like one data-parallel rank, with the same data and seed, no launcher and no
// communication, after one such process by itself. Their throughputs added up, over the
// lone process's, are the scaling the machine allows (the ceiling); the data-parallel
// scaling over it is the data-parallel efficiency. A round whose processes' measured
// steps did not overlap is flagged.
//
//	go run ./bench/dpscale -preset small -steps 6 -rounds 3 -threads1 1 -ceiling
//
// -method picks the adapters' method (lrlora, lora, sinelora; default lrlora), and
// -delta-per-step=false sets model.delta_per_step off: with it on (the default) the
// single rank, whose step has twice the micro-batches, forms ΔW once for the step as
// each data-parallel rank does, so φ's per-step work is the same on both sides and is
// what data parallelism cannot split.
//
//	go run ./bench/dpscale -preset small -steps 6 -rounds 2 -threads1 1 -delta-per-step=false
//
// -tcp adds, after every multi-rank run, the same run with dist.shared_memory false: its
// collectives over loopback TCP instead of /dev/shm (the default for ranks on one host).
// Each such run is compared with the whole backbone over TCP.
//
//	go run ./bench/dpscale -preset small -steps 6 -rounds 2 -threads1 1 -shard -recompute -shard-prefetch 0 -tcp
//
// -all-gather adds, after every sharded run, the same run with LRTRAIN_SHARD_PEER_READS=0:
// its ranks all-gather each block instead of copying the others' shards out of their
// memory (what ranks on one host do by default).
//
//	go run ./bench/dpscale -preset small -steps 6 -rounds 2 -threads1 1 -shard -recompute -shard-prefetch 0,1 -all-gather
//
// -arch and -preset pick the model (init-model's: Qwen2-0.5B's shapes with -arch qwen2
// -preset qwen2-0.5b, whose steps take tens of seconds on 2 cores); -single=false leaves
// out the 1-rank run, so that every ratio is against the whole backbone on as many
// ranks:
//
//	go run ./bench/dpscale -arch qwen2 -preset qwen2-0.5b -steps 4 -rounds 1 -single=false -shard -recompute -shard-prefetch 0
//
// -split adds the data-parallel ranks with model.split_delta: each rank forms and
// back-propagates only its share of the layers' ΔW, and two all-reduces per step share
// the weights and sum their gradients; its scaling over 1 rank is printed too.
//
//	go run ./bench/dpscale -preset small -steps 6 -rounds 2 -threads1 1 -split
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// envNoKeep and envPeerReads are shard.EnvNoKeep and shard.EnvPeerReads (not
// imported: the bench builds without libtorch).
const (
	envNoKeep    = "LRTRAIN_SHARD_NO_KEEP"
	envPeerReads = "LRTRAIN_SHARD_PEER_READS"
)

type flags struct {
	bin, preset, data     string
	arch                  string
	single                bool
	steps, warmup, rounds int
	micro, accum, maxLen  int
	threads1              int
	keep, shard, packing  bool
	ckpt, noKeep          bool
	allGather             bool
	recompute             bool
	method                string
	deltaPerStep          bool
	split                 bool
	ceiling               bool
	tcp                   bool
	ranks                 int
	prefetch              []int
}

func main() {
	var f flags
	flag.StringVar(&f.bin, "lrtrain", "", "lrtrain binary (default: go build ./cmd/lrtrain into a temporary directory)")
	flag.StringVar(&f.preset, "preset", "small", "model preset of lrtrain init-model (tiny, small; qwen2-0.5b with -arch qwen2)")
	flag.StringVar(&f.arch, "arch", "llama", "architecture of lrtrain init-model (llama, qwen2, ...)")
	flag.BoolVar(&f.single, "single", true, "run 1 rank each round (the data-parallel baseline); -single=false leaves it out")
	flag.StringVar(&f.data, "data", "data/testdata/alpaca_tiny_train.json", "alpaca_json training data")
	flag.IntVar(&f.steps, "steps", 8, "optimizer steps per run")
	flag.IntVar(&f.warmup, "warmup", 2, "leading steps of each run left out of the measurement")
	flag.IntVar(&f.rounds, "rounds", 2, "rounds; each runs 1 rank then 2 ranks")
	flag.IntVar(&f.micro, "micro", 2, "micro_batch_size")
	flag.IntVar(&f.accum, "accum", 1, "grad_accum_steps of each of the 2 ranks (1 rank uses twice as many)")
	flag.IntVar(&f.maxLen, "max-len", 128, "data.max_len")
	flag.IntVar(&f.threads1, "threads1", 0, "OMP_NUM_THREADS of the single rank (default: all CPUs)")
	flag.BoolVar(&f.keep, "keep", false, "keep the temporary directory")
	flag.BoolVar(&f.shard, "shard", false, "also run 2 ranks with the frozen backbone sharded between them")
	flag.BoolVar(&f.packing, "packing", false, "pack the examples into rows of exactly -max-len tokens (data.packing) instead of padding each micro-batch to its longest")
	flag.BoolVar(&f.ckpt, "ckpt", false, "also run the whole backbone with model.activation_checkpointing")
	flag.BoolVar(&f.recompute, "recompute", false, "also run the whole backbone (and, with -shard, the sharded one) with model.recompute_delta")
	flag.BoolVar(&f.noKeep, "no-keep", false, "also run each sharded run with "+envNoKeep+"=1")
	flag.BoolVar(&f.allGather, "all-gather", false, "also run each sharded run with "+envPeerReads+"=0 (all-gathers instead of reads of the peers' shards)")
	flag.BoolVar(&f.ceiling, "ceiling", false, "also run, each round, -ranks independent single-rank processes side by side (the data-parallel ranks' configuration, no communication)")
	flag.StringVar(&f.method, "method", "lrlora", "adapter.method of every run")
	flag.BoolVar(&f.deltaPerStep, "delta-per-step", true, "model.delta_per_step of every run")
	flag.BoolVar(&f.split, "split", false, "also run the data-parallel ranks with model.split_delta")
	flag.BoolVar(&f.tcp, "tcp", false, "also run every multi-rank variant with dist.shared_memory false (its collectives over loopback TCP instead of /dev/shm)")
	flag.IntVar(&f.ranks, "ranks", 2, "ranks of the data-parallel (and sharded) runs")
	prefetch := flag.String("shard-prefetch", "1", "dist.shard_prefetch of the sharded runs, comma-separated: one run each")
	flag.Parse()
	for _, p := range strings.Split(*prefetch, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			fmt.Fprintln(os.Stderr, "dpscale: -shard-prefetch:", err)
			os.Exit(2)
		}
		f.prefetch = append(f.prefetch, n)
	}
	if err := run(f); err != nil {
		fmt.Fprintln(os.Stderr, "dpscale:", err)
		os.Exit(1)
	}
}

// result is one run's measured throughput.
type result struct {
	round          int
	ranks, threads int
	sharded, ckpt  bool
	noKeep         bool
	allGather      bool // LRTRAIN_SHARD_PEER_READS=0
	recompute      bool
	split          bool // model.split_delta
	tcp            bool // dist.shared_memory false
	prefetch       int
	shardStats     string
	peakMiB        float64
	tensorMiB      float64 // peak_cpu_tensor_mib: what live tensors held at most
	tokens         float64
	seconds        float64
	steps          int
}

func run(f flags) error {
	if f.ceiling && !f.single {
		return fmt.Errorf("-ceiling compares with the single rank: leave -single on")
	}
	if f.steps <= f.warmup {
		return fmt.Errorf("-steps %d must exceed -warmup %d", f.steps, f.warmup)
	}
	if f.ranks < 2 || f.accum*2%f.ranks != 0 {
		return fmt.Errorf("-ranks %d must be at least 2 and divide 2·accum = %d", f.ranks, f.accum*2)
	}
	tmp, err := os.MkdirTemp("", "dpscale-")
	if err != nil {
		return err
	}
	if f.keep {
		fmt.Println("work directory:", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if f.bin == "" {
		f.bin = filepath.Join(tmp, "lrtrain")
		if out, err := exec.Command("go", "build", "-o", f.bin, "./cmd/lrtrain").CombinedOutput(); err != nil {
			return fmt.Errorf("build lrtrain (run from the repository root): %w\n%s", err, out)
		}
	}
	data, err := filepath.Abs(f.data)
	if err != nil {
		return err
	}
	base := filepath.Join(tmp, "base")
	if out, err := exec.Command(f.bin, "init-model", "--arch", f.arch, "--preset", f.preset, "--seed", "1", "--out", base).CombinedOutput(); err != nil {
		return fmt.Errorf("init-model: %w\n%s", err, out)
	}
	cpus := runtime.NumCPU()
	var results []result
	var pairs []ceilingRun
	for r := range f.rounds {
		variants := []result{{ranks: f.ranks}}
		if f.single {
			variants = append([]result{{ranks: 1}}, variants...)
		}
		if f.split {
			variants = append(variants, result{ranks: f.ranks, split: true})
		}
		if f.ckpt {
			variants = append(variants, result{ranks: f.ranks, ckpt: true})
		}
		if f.recompute {
			variants = append(variants, result{ranks: f.ranks, recompute: true})
		}
		for _, p := range f.prefetch {
			if f.shard {
				variants = append(variants, result{ranks: f.ranks, sharded: true, prefetch: p})
			}
			if f.shard && f.noKeep {
				variants = append(variants, result{ranks: f.ranks, sharded: true, prefetch: p, noKeep: true})
			}
			if f.shard && f.recompute {
				variants = append(variants, result{ranks: f.ranks, sharded: true, prefetch: p, recompute: true})
			}
			if f.shard && f.recompute && f.noKeep {
				variants = append(variants, result{ranks: f.ranks, sharded: true, prefetch: p, recompute: true, noKeep: true})
			}
		}
		if f.tcp {
			var both []result
			for _, v := range variants {
				both = append(both, v)
				if v.ranks > 1 {
					v.tcp = true
					both = append(both, v)
				}
			}
			variants = both
		}
		if f.allGather {
			var both []result
			for _, v := range variants {
				both = append(both, v)
				if v.sharded {
					v.allGather = true
					both = append(both, v)
				}
			}
			variants = both
		}
		for k, v := range variants {
			dir := filepath.Join(tmp, fmt.Sprintf("r%d-v%d", r, k))
			res, err := runOnce(f, base, data, dir, v, cpus)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "round %d, %s: %.0f tokens/s\n", r+1, res.backbone(), res.tokens/res.seconds)
			res.round = r
			results = append(results, res)
		}
		if f.ceiling {
			c, err := runCeiling(f, base, data, filepath.Join(tmp, fmt.Sprintf("r%d-ceiling", r)), cpus)
			if err != nil {
				return err
			}
			c.round = r
			fmt.Fprintf(os.Stderr, "round %d, 1 process alone: %.0f tokens/s, %d independent processes: %.0f tokens/s together\n",
				r+1, c.alone.tokens/c.alone.seconds, len(c.procs), c.tokensPerS())
			pairs = append(pairs, c)
		}
	}
	report(f, results, cpus)
	if f.ceiling {
		reportCeiling(f, results, pairs)
	}
	return nil
}

// runOnce trains one run of variant v (ranks, backbone) and measures it.
func runOnce(f flags, base, data, dir string, v result, cpus int) (result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return result{}, err
	}
	ranks, prefetch := v.ranks, v.prefetch
	shardSize := 1
	if v.sharded {
		shardSize = ranks
	}
	cfgPath, err := writeConfig(f, base, data, dir, f.accum*2/ranks, v.ckpt, v.recompute, v.split && ranks > 1, shardSize, prefetch, !v.tcp)
	if err != nil {
		return result{}, err
	}
	threads := f.threads1
	if threads <= 0 {
		threads = cpus
	}
	var cmd *exec.Cmd
	if ranks == 1 {
		cmd = exec.Command(f.bin, "train", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+strconv.Itoa(threads))
	} else {
		threads = max(1, cpus/ranks)
		cmd = exec.Command(f.bin, "launch", "--standalone", "--nproc-per-node", strconv.Itoa(ranks),
			"--run-dir", filepath.Join(dir, "launch"), "--", "train", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+strconv.Itoa(threads))
	}
	if v.noKeep {
		cmd.Env = append(cmd.Env, envNoKeep+"=1")
	}
	if v.allGather {
		cmd.Env = append(cmd.Env, envPeerReads+"=0")
	}
	started := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("%d rank(s): %w\n%s", ranks, err, tail(out))
	}
	res, err := measure(filepath.Join(dir, "out", "metrics.jsonl"), f.warmup)
	if err != nil {
		return result{}, err
	}
	if res.steps != f.steps-f.warmup {
		return result{}, fmt.Errorf("%d rank(s): %d measured steps, want %d (run took %v)", ranks, res.steps, f.steps-f.warmup, time.Since(started))
	}
	res.ranks, res.threads, res.sharded, res.prefetch, res.ckpt, res.noKeep = ranks, threads, v.sharded, prefetch, v.ckpt, v.noKeep
	res.recompute, res.split, res.tcp, res.allGather = v.recompute, v.split, v.tcp, v.allGather
	if res.peakMiB, res.tensorMiB, res.shardStats, err = peakOf(filepath.Join(dir, "out", "train.log"), f.steps); err != nil {
		return result{}, err
	}
	return res, nil
}

// measure sums tokens and step times of the step records after the first warmup.
func measure(path string, warmup int) (result, error) {
	fh, err := os.Open(path)
	if err != nil {
		return result{}, err
	}
	defer fh.Close()
	var res result
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		var rec struct {
			Step   *int     `json:"step"`
			Tokens *float64 `json:"tokens"`
			StepS  *float64 `json:"step_s"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return result{}, fmt.Errorf("%s: %w", path, err)
		}
		if rec.Step == nil || rec.Tokens == nil || rec.StepS == nil || *rec.Step <= warmup {
			continue
		}
		res.tokens += *rec.Tokens
		res.seconds += *rec.StepS
		res.steps++
	}
	if err := sc.Err(); err != nil {
		return result{}, err
	}
	if res.seconds <= 0 {
		return result{}, fmt.Errorf("%s: no measured steps", path)
	}
	return res, nil
}

// peakOf reads peak_rss_mib and peak_cpu_tensor_mib from the "training finished"
// line of a train.log and, for a sharded run, its gatherer's counts over all steps as
// per-step figures.
func peakOf(path string, steps int) (rss, tensor float64, stats string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, "", err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec struct {
			Message string   `json:"message"`
			Peak    *float64 `json:"peak_rss_mib"`
			Tensor  float64  `json:"peak_cpu_tensor_mib"`
			Gathers float64  `json:"shard_gathers"`
			Reused  float64  `json:"shard_reused"`
			GatherS float64  `json:"shard_gather_s"`
			WaitS   float64  `json:"shard_wait_s"`
			Splits  float64  `json:"split_delta_steps"`
			SplitS  float64  `json:"split_delta_reduce_s"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Message != "training finished" || rec.Peak == nil {
			continue
		}
		if n := float64(steps); rec.Gathers > 0 {
			stats = fmt.Sprintf("%.0f+%.0f kept, %.3f s, wait %.3f s", rec.Gathers/n, rec.Reused/n, rec.GatherS/n, rec.WaitS/n)
		}
		if rec.Splits > 0 {
			stats = fmt.Sprintf("split_delta: exchange %.3f s/step", rec.SplitS/rec.Splits)
		}
		return *rec.Peak, rec.Tensor, stats, nil
	}
	return 0, 0, "", fmt.Errorf("%s: no peak_rss_mib on a \"training finished\" line", path)
}

// report prints one line per run, the best throughput of each world size and their
// ratio, and each other variant's best throughput and peak against the whole backbone's.
func report(f flags, results []result, cpus int) {
	rows := "examples"
	if f.packing {
		rows = "packed rows"
	}
	fmt.Printf("%s preset %s, %s adapters (delta_per_step %t), global batch %d %s × max_len %d, %d steps (first %d left out), %d CPUs\n",
		f.arch, f.preset, f.method, f.deltaPerStep, f.micro*f.accum*2, rows, f.maxLen, f.steps, f.warmup, cpus)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "ranks\tbackbone\tthreads/rank\tgrad_accum\ttokens/step\tstep_s\ttokens/s\tpeak RSS MiB (rank 0)\tpeak tensors MiB\tgathers or all-reduces/step (rank 0)\t")
	best, peak, tensors := map[string]float64{}, map[string]float64{}, map[string]float64{}
	var order []string
	for _, r := range results {
		tps, key := r.tokens/r.seconds, fmt.Sprintf("%d %s", r.ranks, r.backbone())
		if _, ok := best[key]; !ok {
			order = append(order, key)
		}
		best[key], peak[key], tensors[key] = max(best[key], tps), max(peak[key], r.peakMiB), max(tensors[key], r.tensorMiB)
		fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%.0f\t%.3f\t%.0f\t%.1f\t%.1f\t%s\t\n", r.ranks, r.backbone(), r.threads, f.accum*2/r.ranks,
			r.tokens/float64(r.steps), r.seconds/float64(r.steps), tps, r.peakMiB, r.tensorMiB, r.shardStats)
	}
	w.Flush()
	n := f.ranks
	whole := fmt.Sprintf("%d whole", n)
	if f.single {
		fmt.Printf("best: 1 rank %.0f tokens/s, %d ranks %.0f tokens/s, scaling ratio (%d ranks / 1 rank) %.2f\n",
			best["1 whole"], n, best[whole], n, best[whole]/best["1 whole"])
	}
	if split := fmt.Sprintf("%d whole, split_delta", n); f.split && f.single {
		fmt.Printf("best: %d ranks with split_delta %.0f tokens/s, scaling ratio (%d ranks / 1 rank) %.2f\n",
			n, best[split], n, best[split]/best["1 whole"])
	}
	if tcp := whole + ", tcp"; f.tcp && f.single {
		fmt.Printf("best: %d ranks over TCP %.0f tokens/s, scaling ratio (%d ranks / 1 rank) %.2f\n",
			n, best[tcp], n, best[tcp]/best["1 whole"])
	}
	skip := 1 // the 2-rank whole backbone, every ratio's reference
	if f.single {
		skip = 2
	}
	for _, key := range order[skip:] {
		ref := whole // a run over TCP against the whole backbone over TCP
		if strings.HasSuffix(key, ", tcp") {
			ref += ", tcp"
		}
		if key == ref {
			continue
		}
		fmt.Printf("%s / %s, %d ranks: throughput %.2f, peak RSS %.2f, peak tensors %s\n",
			strings.SplitN(key, " ", 2)[1], strings.SplitN(ref, " ", 2)[1], n, best[key]/best[ref], peak[key]/peak[ref], ratioOrNA(tensors[key], tensors[ref]))
	}
}

// ratioOrNA is a/b, or "n/a" where b is 0: with LRTRAIN_CPU_CACHE_MB=0 (libtorch's own
// allocator) no run reports what its tensors held.
func ratioOrNA(a, b float64) string {
	if b <= 0 {
		return "n/a (not counted: LRTRAIN_CPU_CACHE_MB=0)"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// backbone names a run's variant.
func (r result) backbone() string {
	if r.tcp {
		r.tcp = false
		return r.backbone() + ", tcp"
	}
	if r.allGather {
		r.allGather = false
		return r.backbone() + ", all-gather"
	}
	switch {
	case r.ckpt:
		return "whole, checkpointed"
	case r.split:
		return "whole, split_delta"
	case r.sharded && r.recompute && r.noKeep:
		return fmt.Sprintf("sharded, prefetch %d, recompute_delta, no keep", r.prefetch)
	case r.sharded && r.recompute:
		return fmt.Sprintf("sharded, prefetch %d, recompute_delta", r.prefetch)
	case r.recompute:
		return "whole, recompute_delta"
	case r.sharded && r.noKeep:
		return fmt.Sprintf("sharded, prefetch %d, no keep", r.prefetch)
	case r.sharded:
		return fmt.Sprintf("sharded, prefetch %d", r.prefetch)
	}
	return "whole"
}

// tail returns the last 3000 bytes of out.
func tail(out []byte) string {
	if len(out) > 3000 {
		out = out[len(out)-3000:]
	}
	return string(out)
}
