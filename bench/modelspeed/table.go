package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

var methodNotes = map[string]string{
	"lrlora":       "φ fused (lrtrain) / φ in torch ops (PyTorch)",
	"lora":         "PyTorch: merged W0 + s·B·A; lrtrain trains plain LoRA unmerged, as PEFT",
	"lora-peft":    "unmerged x·W0ᵀ + s·(x·Aᵀ)·Bᵀ (PEFT)",
	"lrlora-naive": "φ by broadcast over K, autograd",
}

func printTable(w io.Writer, got map[string]*result, order []string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "method\tside\ttokens/s\tstep ms\tmin–max\tfwd ms\tbwd ms\tRSS loaded\tpeak RSS\tsteps' peak\tlrtrain/PyTorch\t")
	mib := func(kb int64) string { return fmt.Sprintf("%d MiB", kb/1024) }
	for _, label := range order {
		r := got[label]
		lo, hi := minMax(r.StepMs)
		ratio := ""
		ref := "pytorch/" + r.Method
		if r.Method == "lora" && got["pytorch/lora-peft"] != nil {
			ref = "pytorch/lora-peft" // the formulation lrtrain trains plain LoRA with
		}
		if t := got[ref]; t != nil && r.Side == "lrtrain" {
			tlo, _ := minMax(t.StepMs)
			ratio = fmt.Sprintf("%.2f× (min %.2f×)", median(r.StepMs)/median(t.StepMs), lo/tlo)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.0f–%.0f\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t\n", r.Method, r.Side, r.tokensPerSec(),
			median(r.StepMs), lo, hi, median(r.FwdMs), median(r.BwdMs), mib(r.RSSLoadedKB), mib(r.PeakKB), mib(r.TrainPeakKB), ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, label := range order {
		if r := got[label]; r.Side == "pytorch" {
			fmt.Fprintf(w, "  %-13s %s\n", r.Method+":", methodNotes[r.Method])
		}
	}
	for _, label := range order {
		if r := got[label]; r.Side == "lrtrain" && r.GoHandlesPerStep > 0 {
			fmt.Fprintf(w, "  lrtrain %s: %d gotch tensor handles and %.0f MiB of Go heap allocated per step\n",
				r.Method, r.GoHandlesPerStep, float64(r.GoAllocPerStep)/(1<<20))
		}
	}
	if ours, peft := got["lrtrain/lora"], got["pytorch/lora-peft"]; ours != nil && peft != nil {
		fmt.Fprintf(w, "  lrtrain lora / PyTorch lora-peft: %.2f×\n", median(ours.StepMs)/median(peft.StepMs))
	}
	fmt.Fprintln(w, "  step = forward + loss + backward: median of the timed steps (tokens/s at the median), and their range;")
	fmt.Fprintln(w, "  lrtrain/PyTorch = ratio of the median step times (and of the fastest steps); peak RSS = VmHWM of the process;")
	fmt.Fprintln(w, "  steps' peak = VmHWM after a reset that follows loading (the training-time peak)")
	return nil
}

// saveResults keeps every measurement, with the first step's gradient norms.
func saveResults(path string, got map[string]*result, order []string) error {
	var rs []*result
	for _, label := range order {
		rs = append(rs, got[label])
	}
	b, err := json.MarshalIndent(rs, "", " ")
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		return fmt.Errorf("modelspeed: save results: %w", err)
	}
	return nil
}

func minMax(xs []float64) (lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	lo, hi = xs[0], xs[0]
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}
