package model_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// The peak-memory comparison runs each configuration in a child process (this test
// binary, re-executed) and reads its VmHWM, the peak resident set size.
//
// By default it trains the tiny llama preset on long sequences, which takes a second.
// To measure the small preset, as reported in the package documentation:
//
//	LRTRAIN_MEM_PRESET=small LRTRAIN_MEM_BATCH=2 LRTRAIN_MEM_SEQ=512 \
//	  go test ./model/ -run TestCheckpointingLowersPeakMemory -v
const memChildEnv = "LRTRAIN_MEM_CHILD"

func TestCheckpointingLowersPeakMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	if mode := os.Getenv(memChildEnv); mode != "" {
		memChild(t, mode)
		return
	}
	preset := envOr("LRTRAIN_MEM_PRESET", "tiny")
	dir := tinymodel.Write(t, hfinit.Options{Arch: "llama", Preset: preset, Seed: 1})
	peak := map[string]int64{}
	for _, mode := range []string{"plain", "checkpointed"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointingLowersPeakMemory$", "-test.v")
		cmd.Env = append(os.Environ(), memChildEnv+"="+mode, "LRTRAIN_MEM_DIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s child: %v\n%s", mode, err, out)
		}
		kb, ok := parseField(string(out), "VmHWM-kB=")
		if !ok {
			t.Fatalf("%s child printed no VmHWM:\n%s", mode, out)
		}
		peak[mode] = kb
		secs, _ := parseField(string(out), "step-ms=")
		t.Logf("%s preset, %s: peak RSS %d MiB, step %d ms", preset, mode, kb/1024, secs)
	}
	if !(peak["checkpointed"] < peak["plain"]) {
		t.Errorf("peak RSS %d kB with checkpointing, %d kB without", peak["checkpointed"], peak["plain"])
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func parseField(out, key string) (int64, bool) {
	i := strings.Index(out, key)
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(out[i+len(key):])
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(f[0], 10, 64)
	return v, err == nil
}

// memChild runs one training step and prints its peak RSS.
func memChild(t *testing.T, mode string) {
	runtime.LockOSThread()
	b, _ := strconv.Atoi(envOr("LRTRAIN_MEM_BATCH", "2"))
	seq, _ := strconv.Atoi(envOr("LRTRAIN_MEM_SEQ", "1024"))
	m, err := model.Load(os.Getenv("LRTRAIN_MEM_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 8), rand.New(rand.NewPCG(1, 1))); err != nil {
		t.Fatal(err)
	}
	m.Train(true)
	m.SetCheckpointing(mode == "checkpointed")
	rng := rand.New(rand.NewPCG(2, 2))
	ids := make([]int64, b*seq)
	for i := range ids {
		ids[i] = 3 + rng.Int64N(int64(m.Config().VocabSize)-3)
	}
	x, _ := model.Int64Tensor(ids, int64(b), int64(seq))
	start := nowMillis()
	loss, _ := trainStep(t, m, model.Inputs{InputIDs: x}, x)
	elapsed := nowMillis() - start
	hwm, err := vmHWM()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("loss=%v VmHWM-kB=%d step-ms=%d\n", loss, hwm, elapsed)
	_ = ts.TorchErr()
}

func vmHWM() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

func nowMillis() int64 { return time.Now().UnixMilli() }
