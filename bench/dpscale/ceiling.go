package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// minOverlap is the share of each process's measured steps that must run while every
// other process is in its measured steps too; below it the round is flagged.
const minOverlap = 0.9

// ceilingRun is one round's independent processes, run side by side.
type ceilingRun struct {
	round          int
	threads, accum int
	procs          []result
	alone          result // one process of the same configuration, run by itself first
	// from and to bound each process's measured steps (the end of its last warm-up
	// step to the end of its last step), from the moment the processes were started;
	// timed is false when a process's step lines were not all seen.
	from, to []time.Duration
	timed    bool
}

// tokensPerS is the processes' throughputs added up.
func (c ceilingRun) tokensPerS() float64 {
	var sum float64
	for _, p := range c.procs {
		sum += p.tokens / p.seconds
	}
	return sum
}

// overlap is the time every process spent in its measured steps at once, as the
// smallest share of one process's measured time, and the gap between the first and the
// last process finishing their measured steps.
func (c ceilingRun) overlap() (share float64, gap time.Duration) {
	from, to := slices.Max(c.from), slices.Min(c.to)
	common := max(to-from, 0)
	share = 1
	for i := range c.from {
		if d := c.to[i] - c.from[i]; d > 0 {
			share = min(share, float64(common)/float64(d))
		}
	}
	return share, slices.Max(c.to) - slices.Min(c.to)
}

// runCeiling starts f.ranks `lrtrain train` processes at once, each with one
// data-parallel rank's configuration (micro_batch_size -micro, grad_accum_steps 2·A/N)
// and its OMP_NUM_THREADS (CPUs / N, as the launcher gives a rank), in an output
// directory of its own; waits for all of them and measures each like runOnce does (its
// measured steps' tokens over their summed step_s), so that the throughputs add up to a
// figure comparable with the runs'. All use the same data and seed: the same
// micro-batches, so the same work, and the processes run side by side to their ends;
// what is measured is the machine, not the data (the data-parallel ranks' unequal
// micro-batches are not part of the ceiling). The ceiling's reference is one such
// process run by itself just before, on the same examples: the 1-rank run takes other
// examples per micro-batch (and a micro-batch's cost follows its padded length, its
// tokens/s counts the real tokens), so only the lone process is the same work.
func runCeiling(f flags, base, data, dir string, cpus int) (ceilingRun, error) {
	threads, accum := max(1, cpus/f.ranks), f.accum*2/f.ranks
	alone, err := sideBySide(f, base, data, filepath.Join(dir, "alone"), 1, threads, accum)
	if err != nil {
		return alone, err
	}
	c, err := sideBySide(f, base, data, dir, f.ranks, threads, accum)
	c.alone = alone.procs[0]
	return c, err
}

// sideBySide starts n processes at once and measures each.
func sideBySide(f flags, base, data, dir string, n, threads, accum int) (ceilingRun, error) {
	c := ceilingRun{threads: threads, accum: accum, timed: true}
	type proc struct {
		cmd     *exec.Cmd
		ends    map[int]time.Duration
		out     []string
		scanned chan struct{}
	}
	procs := make([]*proc, n)
	for i := range procs {
		d := filepath.Join(dir, fmt.Sprintf("p%d", i+1))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return c, err
		}
		cfgPath, err := writeConfig(f, base, data, d, c.accum, false, false, false, 1, 0, true)
		if err != nil {
			return c, err
		}
		cmd := exec.Command(f.bin, "train", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "OMP_NUM_THREADS="+strconv.Itoa(c.threads))
		procs[i] = &proc{cmd: cmd, ends: map[int]time.Duration{}, scanned: make(chan struct{})}
	}
	// Every process is started before any is waited for; each one's stderr (the
	// trainer's JSON log lines) is read as it comes, to time the end of every step.
	started := time.Now()
	for i, p := range procs {
		r, w, err := os.Pipe()
		if err != nil {
			return c, err
		}
		p.cmd.Stdout, p.cmd.Stderr = w, w
		err = p.cmd.Start()
		w.Close()
		if err != nil {
			r.Close()
			for _, q := range procs[:i] {
				q.cmd.Process.Kill()
				q.cmd.Wait()
			}
			return c, fmt.Errorf("independent process %d: %w", i+1, err)
		}
		go func() {
			defer close(p.scanned)
			defer r.Close()
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				at := time.Since(started)
				var rec struct {
					Message string `json:"message"`
					Step    *int   `json:"step"`
				}
				if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Message == "step" && rec.Step != nil {
					p.ends[*rec.Step] = at
				}
				if p.out = append(p.out, sc.Text()); len(p.out) > 40 {
					p.out = p.out[1:]
				}
			}
		}()
	}
	var failed error
	for i, p := range procs {
		err := p.cmd.Wait()
		<-p.scanned
		if err != nil && failed == nil {
			failed = fmt.Errorf("independent process %d: %w\n%s", i+1, err, tail([]byte(strings.Join(p.out, "\n"))))
		}
	}
	if failed != nil {
		return c, failed
	}
	for i, p := range procs {
		out := filepath.Join(dir, fmt.Sprintf("p%d", i+1), "out")
		res, err := measure(filepath.Join(out, "metrics.jsonl"), f.warmup)
		if err != nil {
			return c, err
		}
		if res.steps != f.steps-f.warmup {
			return c, fmt.Errorf("independent process %d: %d measured steps, want %d", i+1, res.steps, f.steps-f.warmup)
		}
		res.ranks, res.threads = 1, c.threads
		if res.peakMiB, _, _, err = peakOf(filepath.Join(out, "train.log"), f.steps); err != nil {
			return c, err
		}
		c.procs = append(c.procs, res)
		from, ok := p.ends[f.warmup]
		if f.warmup == 0 {
			from, ok = 0, true // no warm-up: from the start, startup included
		}
		to, ok2 := p.ends[f.steps]
		c.timed = c.timed && ok && ok2
		c.from, c.to = append(c.from, from), append(c.to, to)
	}
	return c, nil
}

// reportCeiling prints each independent process's measured steps and, per round, the
// processes' combined throughput against the round's 1 rank (the ceiling) next to the
// data-parallel scaling of the same round and their ratio (the data-parallel efficiency).
func reportCeiling(f flags, results []result, pairs []ceilingRun) {
	n := f.ranks
	fmt.Printf("ceiling: %d independent single-rank processes per round, started together (lrtrain train each, no launcher, no communication, same data and seed)\n", n)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "round\tprocess\tthreads\tgrad_accum\ttokens/step\tstep_s\ttokens/s\tpeak RSS MiB\tmeasured steps (s after start)\t")
	for _, c := range pairs {
		p := c.alone
		fmt.Fprintf(w, "%d\talone\t%d\t%d\t%.0f\t%.3f\t%.0f\t%.1f\tby itself, before\t\n", c.round+1, p.threads, c.accum,
			p.tokens/float64(p.steps), p.seconds/float64(p.steps), p.tokens/p.seconds, p.peakMiB)
		for i, p := range c.procs {
			span := "not timed"
			if c.timed {
				span = fmt.Sprintf("%.2f–%.2f", c.from[i].Seconds(), c.to[i].Seconds())
			}
			fmt.Fprintf(w, "%d\t%d\t%d\t%d\t%.0f\t%.3f\t%.0f\t%.1f\t%s\t\n", c.round+1, i+1, p.threads, c.accum,
				p.tokens/float64(p.steps), p.seconds/float64(p.steps), p.tokens/p.seconds, p.peakMiB, span)
		}
	}
	w.Flush()
	fmt.Printf("ceiling = %d independent / 1 alone (the same process by itself); scaling = %d ranks / 1 rank; DP efficiency = scaling / ceiling\n", n, n)
	w = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	splitCols := ""
	if f.split {
		splitCols = "split_delta scaling\tsplit_delta DP efficiency\t"
	}
	fmt.Fprintf(w, "round\t1 alone tokens/s\t%d independent tokens/s\tceiling\t1 rank tokens/s\t%d ranks tokens/s\tscaling\tDP efficiency\t%smeasured steps overlap\t\n", n, n, splitCols)
	var ceilings, scalings, effs, splitEffs []float64
	var best1, bestAlone, bestInd, bestDP, bestSplit float64
	var flagged []string
	for _, c := range pairs {
		var one, dp, split float64
		for _, r := range results {
			if r.round != c.round {
				continue
			}
			switch {
			case r.ranks == 1:
				one = r.tokens / r.seconds
			case r.backbone() == "whole":
				dp = r.tokens / r.seconds
			case r.backbone() == "whole, split_delta":
				split = r.tokens / r.seconds
			}
		}
		ind, alone := c.tokensPerS(), c.alone.tokens/c.alone.seconds
		best1, bestAlone, bestInd, bestDP, bestSplit = max(best1, one), max(bestAlone, alone), max(bestInd, ind), max(bestDP, dp), max(bestSplit, split)
		ceiling, scaling := ind/alone, dp/one
		ceilings, scalings, effs = append(ceilings, ceiling), append(scalings, scaling), append(effs, scaling/ceiling)
		splitCells := ""
		if f.split {
			splitEffs = append(splitEffs, split/one/ceiling)
			splitCells = fmt.Sprintf("%.2f\t%.0f %%\t", split/one, 100*split/one/ceiling)
		}
		overlap := "not timed"
		if c.timed {
			share, gap := c.overlap()
			overlap = fmt.Sprintf("%.0f %%, ends %.2f s apart", 100*share, gap.Seconds())
			if share < minOverlap {
				flagged = append(flagged, fmt.Sprintf("round %d: only %.0f %% of a process's measured steps ran while all %d were in theirs (the last ended %.2f s after the first): the ceiling is overstated",
					c.round+1, 100*share, n, gap.Seconds()))
			}
		}
		fmt.Fprintf(w, "%d\t%.0f\t%.0f\t%.2f\t%.0f\t%.0f\t%.2f\t%.0f %%\t%s%s\t\n", c.round+1, alone, ind, ceiling, one, dp, scaling, 100*scaling/ceiling, splitCells, overlap)
	}
	w.Flush()
	if f.split {
		fmt.Printf("split_delta: best %.0f tokens/s, scaling %.2f, data-parallel efficiency %.0f %% (best), %.0f %% (median of the rounds)\n",
			bestSplit, bestSplit/best1, 100*(bestSplit/best1)/(bestInd/bestAlone), 100*median(splitEffs))
	}
	fmt.Printf("best: 1 alone %.0f tokens/s, %d independent %.0f, 1 rank %.0f, %d ranks %.0f: ceiling %.2f, scaling %.2f, data-parallel efficiency %.0f %%\n",
		bestAlone, n, bestInd, best1, n, bestDP, bestInd/bestAlone, bestDP/best1, 100*(bestDP/best1)/(bestInd/bestAlone))
	fmt.Printf("median of the rounds: ceiling %.2f, scaling %.2f, data-parallel efficiency %.0f %%\n",
		median(ceilings), median(scalings), 100*median(effs))
	for _, s := range flagged {
		fmt.Println("warning:", s)
	}
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
