package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/optim"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/phiop"
	"github.com/lrtrain/lrtrain/safetensors"
)

// runOpts says what one lrtrain measurement runs (a child process gets it as JSON).
type runOpts struct {
	ModelDir   string
	Adapters   string
	Inputs     string
	Method     string // lrlora or lora
	Threads    int
	Warmup     int // untimed steps, the first of which is the check step
	Steps      int // timed steps
	CPUProfile string
}

// measureLRTrain loads the model, attaches adapters with the values of o.Adapters to
// every target module and times forward + causal-LM loss (sum / targets) + backward.
// It locks the calling goroutine to its OS thread (libtorch's grad mode is per thread).
func measureLRTrain(o runOpts) (*result, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	method, err := adapter.ParseMethod(o.Method)
	if err != nil || method == adapter.SineLoRA {
		return nil, fmt.Errorf("modelspeed: method %q (want lrlora or lora)", o.Method)
	}
	if o.Warmup < 1 || o.Steps < 0 {
		return nil, fmt.Errorf("modelspeed: %d warmup and %d timed steps: need warmup ≥ 1 (the check step)", o.Warmup, o.Steps)
	}
	phiop.SetNumThreads(o.Threads)
	if _, err := ts.GradSetEnabled(true); err != nil {
		return nil, fmt.Errorf("modelspeed: grad mode: %w", err)
	}

	m, err := model.Load(o.ModelDir)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	params, err := attachAdapters(m, o.Adapters, method)
	if err != nil {
		return nil, err
	}
	ids, err := readInputIDs(o.Inputs)
	if err != nil {
		return nil, err
	}
	defer ids.Drop()
	shape, _ := ids.Size()
	opt, err := optim.NewAdamW(param.Trainable(params), optim.DefaultAdamWConfig())
	if err != nil {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	defer opt.Close()
	m.Train(true)

	res := &result{Side: "lrtrain", Method: method.String(), Threads: phiop.NumThreads(),
		Batch: int(shape[0]), Seq: int(shape[1])}
	loadPeak, _ := procStatusKB("VmHWM")
	res.RSSLoadedKB, _ = procStatusKB("VmRSS")
	res.PeakReset = resetPeakRSS()
	var handles int64
	var ms0 runtime.MemStats
	for step := 0; step < o.Warmup+o.Steps; step++ {
		if step == o.Warmup {
			handles = ts.TensorCount
			runtime.ReadMemStats(&ms0)
		}
		if step == o.Warmup && o.CPUProfile != "" {
			stop, err := startProfile(o.CPUProfile)
			if err != nil {
				return nil, err
			}
			defer stop()
		}
		if err := opt.ZeroGrad(); err != nil {
			return nil, fmt.Errorf("modelspeed: %w", err)
		}
		fwd, bwd, loss, count, err := trainStep(m, ids)
		if err != nil {
			return nil, fmt.Errorf("modelspeed: step %d: %w", step, err)
		}
		if step == 0 {
			res.Loss, res.Count, res.FirstStepMs = loss, count, ms(fwd+bwd)
			if res.GradNorms, err = gradNorms(params); err != nil {
				return nil, err
			}
		} else if step >= o.Warmup {
			res.FwdMs = append(res.FwdMs, ms(fwd))
			res.BwdMs = append(res.BwdMs, ms(bwd))
			res.StepMs = append(res.StepMs, ms(fwd+bwd))
		}
	}
	if o.Steps > 0 {
		var ms1 runtime.MemStats
		runtime.ReadMemStats(&ms1)
		res.GoHandlesPerStep = (ts.TensorCount - handles) / int64(o.Steps)
		res.GoAllocPerStep = int64(ms1.TotalAlloc-ms0.TotalAlloc) / int64(o.Steps)
	}
	res.TrainPeakKB, _ = procStatusKB("VmHWM")
	res.PeakKB = max(loadPeak, res.TrainPeakKB)
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// trainStep runs forward, the mean causal-LM loss over the targets and backward, and
// returns the time of forward (with the loss) and of backward, the loss and the targets.
func trainStep(m *model.Model, ids *ts.Tensor) (fwd, bwd time.Duration, loss float64, count int64, err error) {
	start := time.Now()
	logits, err := m.Forward(model.Inputs{InputIDs: ids})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer logits.Drop()
	sum, count, err := model.CausalLMLoss(logits, ids)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer sum.Drop()
	mean, err := sum.DivScalar(ts.FloatScalar(float64(count)), false)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer mean.Drop()
	mid := time.Now()
	if err := mean.Backward(); err != nil {
		return 0, 0, 0, 0, err
	}
	end := time.Now()
	loss, err = tensorkit.Scalar(mean)
	return mid.Sub(start), end.Sub(mid), loss, count, err
}

// attachAdapters injects adapters of the method into the target modules and copies the
// values of the adapters file into every tensor they own. It returns the tensors.
func attachAdapters(m *model.Model, path string, method adapter.Method) ([]param.Tensor, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	defer f.Close()
	var rank, k int
	meta := f.Metadata()
	if _, err := fmt.Sscan(meta["rank"], &rank); err != nil {
		return nil, fmt.Errorf("modelspeed: %s: rank %q: %w", path, meta["rank"], err)
	}
	if _, err := fmt.Sscan(meta["K"], &k); err != nil {
		return nil, fmt.Errorf("modelspeed: %s: K %q: %w", path, meta["K"], err)
	}
	spec := adapter.Default()
	spec.Method, spec.R, spec.K = method, rank, k
	spec.TargetModules = adapter.Targets{Names: targetModules}
	ads, err := m.Inject(spec, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		return nil, err
	}
	if want := len(targetModules) * m.Config().NumHiddenLayers; len(ads) != want {
		return nil, fmt.Errorf("modelspeed: %d adapters, want %d", len(ads), want)
	}
	list := m.TrainableTensors()
	// Writing into leaves that require grad needs grad mode off.
	if _, err := ts.GradSetEnabled(false); err != nil {
		return nil, fmt.Errorf("modelspeed: grad mode: %w", err)
	}
	defer ts.GradSetEnabled(true)
	for _, nt := range list {
		vals, err := f.Float32s(nt.Name)
		if err != nil {
			return nil, fmt.Errorf("modelspeed: adapter values: %w", err)
		}
		shape, err := nt.Tensor.Size()
		if err != nil {
			return nil, err
		}
		src, err := model.Float32Tensor(vals, shape...)
		if err != nil {
			return nil, fmt.Errorf("modelspeed: %s: %w", nt.Name, err)
		}
		// An out= call writes into the adapter's own storage (src·1 → tensor).
		h, err := src.MulScalarOut(nt.Tensor, ts.FloatScalar(1), false)
		src.Drop()
		if err != nil {
			return nil, fmt.Errorf("modelspeed: set %s: %w", nt.Name, err)
		}
		h.Drop()
	}
	return list, nil
}

// readInputIDs reads the batch that the harness wrote.
func readInputIDs(path string) (*ts.Tensor, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	defer f.Close()
	vals, err := f.Int64s("input_ids")
	if err != nil {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	info, _ := f.Info("input_ids")
	return model.Int64Tensor(vals, info.Shape...)
}

// gradNorms returns ‖grad‖₂ of every trainable tensor, accumulated in float64.
func gradNorms(list []param.Tensor) (map[string]float64, error) {
	out := map[string]float64{}
	for _, nt := range list {
		if !nt.Trainable {
			continue
		}
		g, err := nt.Tensor.Grad(false)
		if err != nil {
			return nil, fmt.Errorf("modelspeed: grad of %s: %w", nt.Name, err)
		}
		c, err := g.ToDevice(gotch.CPU, gotch.Float, false, false, true)
		if err != nil {
			return nil, fmt.Errorf("modelspeed: grad of %s: %w", nt.Name, err)
		}
		vals, err := tensorkit.Float32s(c)
		c.Drop()
		if err != nil {
			return nil, fmt.Errorf("modelspeed: grad of %s: %w", nt.Name, err)
		}
		var s float64
		for _, v := range vals {
			s += float64(v) * float64(v)
		}
		out[nt.Name] = math.Sqrt(s)
	}
	return out, nil
}

// startProfile writes a Go CPU profile of the timed steps to path.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("modelspeed: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
