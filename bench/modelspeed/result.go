package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// resultPrefix starts the one line each measuring process prints with its result.
const resultPrefix = "MODELSPEED_RESULT "

// result is one side's measurement of one method. torch_ref.py writes the same fields.
type result struct {
	Side        string             `json:"side"` // "lrtrain" or "pytorch"
	Method      string             `json:"method"`
	Threads     int                `json:"threads"`
	Batch       int                `json:"batch"`
	Seq         int                `json:"seq"`
	Loss        float64            `json:"loss"`       // first step: loss sum / targets
	Count       int64              `json:"count"`      // first step: number of targets
	GradNorms   map[string]float64 `json:"grad_norms"` // first step: ‖∂loss/∂p‖ per adapter tensor
	FirstStepMs float64            `json:"first_step_ms"`
	FwdMs       []float64          `json:"fwd_ms"`  // timed steps: forward + loss
	BwdMs       []float64          `json:"bwd_ms"`  // timed steps: backward
	StepMs      []float64          `json:"step_ms"` // timed steps: both
	RSSLoadedKB int64              `json:"rss_loaded_kb"`
	PeakKB      int64              `json:"peak_kb"`       // VmHWM over the whole process
	TrainPeakKB int64              `json:"train_peak_kb"` // VmHWM of the steps alone (peak reset after loading)
	PeakReset   bool               `json:"peak_reset"`    // false: the reset was refused, TrainPeakKB = PeakKB

	// lrtrain only, per timed step: gotch tensor handles created (each comes with a
	// 100 kB Go allocation in gotch v0.9.1) and bytes allocated on the Go heap.
	GoHandlesPerStep int64 `json:"go_handles_per_step,omitempty"`
	GoAllocPerStep   int64 `json:"go_alloc_per_step,omitempty"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// tokensPerSec is the throughput at the median step time.
func (r *result) tokensPerSec() float64 {
	return float64(r.Batch*r.Seq) / (median(r.StepMs) / 1000)
}

// parseResults reads every result line of a process's standard output.
func parseResults(out []byte) ([]*result, error) {
	var rs []*result
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), resultPrefix)
		if !ok {
			continue
		}
		r := &result{}
		if err := json.Unmarshal([]byte(line), r); err != nil {
			return nil, fmt.Errorf("modelspeed: result line: %w", err)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("modelspeed: no %q line in the output:\n%s", strings.TrimSpace(resultPrefix), out)
	}
	return rs, nil
}

func printResult(r *result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Println(resultPrefix + string(b))
	return err
}

// Tolerances of the agreement check, relative. Both sides compute in float32 with the
// same libtorch kernels for matmuls, norms and softmax (LoRA gradients agree to 2e-14);
// LR-LoRA's φ differs: lrtrain's fused kernel with its own sin/cos polynomials against
// sin(πu)/(πu) in torch ops, a few ulps per element. On the 4-layer Qwen2 at 256 tokens
// the losses are identical and the gradient norms agree within 4e-5 (each side is within
// 7e-5 of a float64 run); the bounds leave 25× room and still catch a real difference:
// LoRA against LR-LoRA with these adapter values fails both. The adapter values keep the
// step well conditioned (see writeAdapters): with larger ones, ulp-level differences in
// the forward pass alone move gradient norms by 2%.
const (
	lossTol = 1e-5
	gradTol = 1e-3
)

// agreement compares the first step of other with ref (same batch, same adapter values,
// same mathematics) and describes the comparison; err is non-nil when they disagree.
func agreement(ref, other *result) (string, error) {
	var problems []string
	dl := math.Abs(ref.Loss-other.Loss) / math.Abs(ref.Loss)
	if !(dl <= lossTol) {
		problems = append(problems, fmt.Sprintf("loss %.8g vs %.8g (relative difference %.2g > %.0g)", ref.Loss, other.Loss, dl, lossTol))
	}
	if ref.Count != other.Count {
		problems = append(problems, fmt.Sprintf("%d targets vs %d", ref.Count, other.Count))
	}
	worst, worstName := 0.0, ""
	for name, g := range ref.GradNorms {
		h, ok := other.GradNorms[name]
		if !ok {
			problems = append(problems, "no gradient for "+name+" on the "+other.Side+" side")
			continue
		}
		if d := math.Abs(g-h) / math.Max(math.Abs(g), 1e-30); !(d <= worst) {
			worst, worstName = d, name
		}
	}
	if len(ref.GradNorms) == 0 || len(ref.GradNorms) != len(other.GradNorms) {
		problems = append(problems, fmt.Sprintf("%d gradient norms vs %d", len(ref.GradNorms), len(other.GradNorms)))
	}
	if !(worst <= gradTol) {
		problems = append(problems, fmt.Sprintf("gradient norm of %s: %.8g vs %.8g (relative difference %.2g > %.0g)",
			worstName, ref.GradNorms[worstName], other.GradNorms[worstName], worst, gradTol))
	}
	desc := fmt.Sprintf("loss %s %.8f, %s %.8f (rel. diff %.1e); %d gradient norms, max rel. diff %.1e",
		ref.label(), ref.Loss, other.label(), other.Loss, dl, len(ref.GradNorms), worst)
	if len(problems) > 0 {
		return desc, fmt.Errorf("modelspeed: %s and %s compute different things: %s", ref.label(), other.label(), strings.Join(problems, "; "))
	}
	return desc, nil
}

func (r *result) label() string { return r.Side + "/" + r.Method }

// procStatusKB reads a "Name:   123 kB" field of /proc/self/status.
func procStatusKB(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// resetPeakRSS sets VmHWM back to the current RSS (Linux ≥ 4.0); false where refused.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
