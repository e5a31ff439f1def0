package multinode

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/safetensors"
)

// steps is the length of every training run: long enough that a fault held for
// several seconds from step 10 on ends well before the run does (a step of the tiny
// model takes about 80 ms on three ranks sharing 2 cores).
const steps = 200

var (
	baseOnce sync.Once
	baseDir  string
	baseErr  error
)

// baseModel writes the tiny Llama once per run (lrtrain init-model needs no network).
func baseModel(t *testing.T) string {
	t.Helper()
	baseOnce.Do(func() {
		baseDir = filepath.Join(workDir, "base")
		out, err := lrtrainCmd(t, "init-model", "--arch", "llama", "--preset", "tiny", "--seed", "1", "--out", baseDir).CombinedOutput()
		if err != nil {
			baseErr = fmt.Errorf("init-model: %v\n%s", err, out)
		}
	})
	if baseErr != nil {
		t.Fatal(baseErr)
	}
	return baseDir
}

// trainConfig writes a run's configuration: the tiny Llama, LR-LoRA, micro-batch 1
// and 2 accumulation steps per rank, a constant schedule without warmup (so a run
// stopped at step s and resumed is the run to s continued), Adam's eps 1e-4 (so that
// rounding noise does not get full-size Adam steps), a checkpoint every 5 steps and a
// 20 s collective timeout. Shared memory is off: the ranks under test sit in separate
// namespaces and reduce through Gloo's ring over TCP, and the reference, whose ranks
// share one host, must sum in the same order to give the same bytes.
func trainConfig(t *testing.T, out string, maxSteps int) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	data := filepath.Join(filepath.Dir(file), "..", "..", "data", "testdata", "alpaca_tiny_train.json")
	yaml := fmt.Sprintf(`model: {path: %s, dtype: float32}
adapter: {method: lrlora, r: 4, dropout: 0.0, phi: {k: 8}}
data: {format: alpaca_json, train: %s, max_len: 64}
train: {seed: 7, eps: 1.0e-4, max_steps: %d, micro_batch_size: 1, grad_accum_steps: 2, lr: 1.0e-2,
        warmup_ratio: 0, schedule: constant, grad_clip: 1.0, log_every: 1}
checkpoint: {every: 5, keep_last: 1000}
dist: {backend: gloo, timeout: %s, shared_memory: false}
output: {dir: %s}
`, baseModel(t), data, maxSteps, collectiveTimeout, out)
	path := filepath.Join(t.TempDir(), fmt.Sprintf("cfg-%d.yaml", maxSteps))
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// collectiveTimeout is dist.timeout of every run: no collective waits longer.
const collectiveTimeout = 20 * time.Second

// segment is a stretch of a run at one world size: from the checkpoint of step from
// (0: from scratch) to step to.
type segment struct{ world, from, to int }

// reference trains the segments one after the other on loopback, in a namespace of
// its own (launch --standalone, one thread per worker as in the runs under test), and
// returns the output directory. A run whose rounds had these world sizes and resumed
// from these steps must end with the reference's adapter bytes: each segment has the
// same world size, micro-batch cut and thread count as its counterpart, so every sum
// is formed in the same order.
func reference(t *testing.T, h *Host, segs []segment) string {
	t.Helper()
	key := fmt.Sprint(segs)
	refMu.Lock()
	defer refMu.Unlock()
	if out, ok := refs[key]; ok {
		return out // the same segments were trained for an earlier test of this run
	}
	out := filepath.Join(workDir, fmt.Sprintf("reference-%d", len(refs)))
	for i, s := range segs {
		runDir := filepath.Join(out+"-runs", strconv.Itoa(i))
		if err := os.MkdirAll(filepath.Dir(runDir), 0o755); err != nil {
			t.Fatal(err)
		}
		p, err := h.Start("reference", runDir+".log", []string{"OMP_NUM_THREADS=1"}, buildLrtrain(t),
			"launch", "--standalone", "--nproc-per-node", strconv.Itoa(s.world), "--run-dir", runDir,
			"--", "train", "--config", trainConfig(t, out, s.to))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(5 * time.Minute); err != nil {
			p.Kill()
			t.Fatalf("reference segment %+v: %v\n%s", s, err, p.Output(4000))
		}
	}
	refs[key] = out
	return out
}

// refs are the references trained so far in this run, by their segments.
var (
	refMu sync.Mutex
	refs  = map[string]string{}
)

// lrtrainCmd is a command running the built lrtrain in this namespace (for commands
// that use no network).
func lrtrainCmd(t *testing.T, args ...string) *exec.Cmd {
	cmd := exec.Command(buildLrtrain(t), args...)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	return cmd
}

// adapterFile is the adapter file of the checkpoint of step under out.
func adapterFile(out string, step int) string {
	return filepath.Join(out, "checkpoints", checkpoint.DirName(int64(step)), "adapter.safetensors")
}

// compareAdapters reports whether the two adapter files are byte-identical and, when
// not, the largest absolute difference of any value (and the largest |value|).
func compareAdapters(t *testing.T, want, got string) (same bool, maxDiff, maxAbs float64) {
	t.Helper()
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) == string(b) {
		return true, 0, 0
	}
	wv, gv := readAdapter(t, want), readAdapter(t, got)
	names := make([]string, 0, len(wv))
	for n := range wv {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if len(gv[n]) != len(wv[n]) {
			t.Fatalf("%s: tensor %s has %d values, want %d", got, n, len(gv[n]), len(wv[n]))
		}
		for i, w := range wv[n] {
			maxDiff = max(maxDiff, math.Abs(w-gv[n][i]))
			maxAbs = max(maxAbs, math.Abs(w))
		}
	}
	return false, maxDiff, maxAbs
}

func readAdapter(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]float64{}
	for _, n := range f.Names() {
		if m[n], err = f.Float64s(n); err != nil {
			t.Fatalf("%s: %s: %v", path, n, err)
		}
	}
	return m
}

// metricSteps lists the steps of the training records in out's metrics.jsonl.
func metricSteps(out string) []int {
	f, err := os.Open(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var s []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Step int      `json:"step"`
			Loss *float64 `json:"loss"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Loss != nil {
			s = append(s, r.Step)
		}
	}
	return s
}

// lastStep is the highest step logged so far (0 before the first).
func lastStep(out string) int {
	m := 0
	for _, s := range metricSteps(out) {
		m = max(m, s)
	}
	return m
}

// jsonLines decodes the JSON object lines of a log, skipping other lines.
func jsonLines(text string) []map[string]any {
	var recs []map[string]any
	for _, line := range strings.Split(text, "\n") {
		var r map[string]any
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &r) == nil {
			recs = append(recs, r)
		}
	}
	return recs
}
