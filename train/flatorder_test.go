package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/ncclpg"
	"github.com/lrtrain/lrtrain/internal/fakenccl"
	"github.com/lrtrain/lrtrain/internal/tensorkit"
	"github.com/lrtrain/lrtrain/nccl"
)

// The flat all-reduce of a GPU rank, run against ncclpg on the fake libnccl/libcudart of
// internal/fakenccl. The fakes' "device" memory is host memory, so CPU tensors stand for
// CUDA ones and fakeCUDA tells the trainer it is on a GPU. The fakes log every event
// record, stream wait, stream synchronise and collective in call order; device-wide
// synchronisations are counted by deviceSyncs.

// fakeCUDA is the device the trainer believes the CPU tensors are on.
var fakeCUDA = gotch.Device{Name: "CUDA", Value: 0}

// withFakeNCCL builds the fakes and points the nccl package at them; it returns the
// fakes' call log. The library is unloaded when the test ends, after its groups close.
func withFakeNCCL(t *testing.T) string {
	t.Helper()
	libs, err := fakenccl.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(nccl.EnvNCCLLibrary, libs.NCCL)
	t.Setenv(nccl.EnvCudartLibrary, libs.Cudart)
	logPath := filepath.Join(t.TempDir(), "calls.log")
	t.Setenv("FAKE_NCCL_LOG", logPath)
	t.Cleanup(func() { _ = nccl.Shutdown() })
	return logPath
}

// withGrads makes one parameter per weight slice, the first one 2×3 and the others flat,
// each with gradient exactly its weights (the gradient of sum(param·weights)).
func withGrads(t *testing.T, weights ...[]float32) []ts.NamedTensor {
	t.Helper()
	params := make([]ts.NamedTensor, len(weights))
	for i, w := range weights {
		shape := []int64{int64(len(w))}
		if i == 0 {
			shape = []int64{2, int64(len(w)) / 2}
		}
		x, err := ts.Zeros(shape, gotch.Float, gotch.CPU)
		if err == nil {
			x, err = x.SetRequiresGrad(true, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Drop() })
		wt, err := ts.OfSlice(w)
		if err == nil {
			wt, err = wt.Reshape(shape, true)
		}
		var loss *ts.Tensor
		if err == nil {
			loss, err = x.Mul(wt, false)
			wt.Drop()
		}
		if err == nil {
			loss, err = loss.Sum(gotch.Float, true)
		}
		if err == nil {
			err = loss.Backward()
			loss.Drop()
		}
		if err != nil {
			t.Fatal(err)
		}
		params[i] = ts.NamedTensor{Name: fmt.Sprintf("p%d", i), Tensor: x}
	}
	return params
}

// gradsOfParams reads the gradients back, flattened.
func gradsOfParams(t *testing.T, params []ts.NamedTensor) [][]float32 {
	t.Helper()
	grads, err := gradsOf(params, 0)
	defer dropAll(grads)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float32, len(grads))
	for i, g := range grads {
		if out[i], err = tensorkit.Float32s(g); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The ordered path, in the order the device needs it: an event recorded on the compute
// stream (0), the group's stream waiting for it, the all-reduce of all 10 elements on
// the group's stream, an event recorded there, the compute stream waiting for it.
var orderedPath = []*regexp.Regexp{
	regexp.MustCompile(`^cudaEventRecord event=(0x[0-9a-f]+) stream=0x0$`),
	regexp.MustCompile(`^cudaStreamWaitEvent stream=(0x[0-9a-f]+) event=(0x[0-9a-f]+) recorded=1$`),
	regexp.MustCompile(`^ncclAllReduce send=(0x[0-9a-f]+) recv=(0x[0-9a-f]+) count=10 dt=7 op=0 root=0 comm=0x[0-9a-f]+ stream=(0x[0-9a-f]+)$`),
	regexp.MustCompile(`^cudaEventRecord event=(0x[0-9a-f]+) stream=(0x[0-9a-f]+)$`),
	regexp.MustCompile(`^cudaStreamWaitEvent stream=0x0 event=(0x[0-9a-f]+) recorded=1$`),
}

// checkOrderedPath matches the log's event, synchronise and collective lines against
// orderedPath, and the handles that must agree across lines.
func checkOrderedPath(t *testing.T, log string) {
	t.Helper()
	var lines []string
	for line := range strings.Lines(log) {
		if strings.HasPrefix(line, "cuda") && !strings.HasPrefix(line, "cudaEventCreate") || strings.HasPrefix(line, "nccl") && !strings.HasPrefix(line, "ncclCommInit") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if len(lines) != len(orderedPath) {
		t.Fatalf("device calls:\n%s\nwant the %d of the ordered path", strings.Join(lines, "\n"), len(orderedPath))
	}
	m := make([][]string, len(lines))
	for i, re := range orderedPath {
		if m[i] = re.FindStringSubmatch(lines[i]); m[i] == nil {
			t.Fatalf("device call %d = %q, want %v; all:\n%s", i+1, lines[i], re, strings.Join(lines, "\n"))
		}
	}
	ready, stream, done := m[0][1], m[1][1], m[3][1]
	if m[1][2] != ready || m[2][1] != m[2][2] || m[2][3] != stream || m[3][2] != stream || m[4][1] != done || done == ready {
		t.Errorf("handles disagree (ready event %s, group stream %s, done event %s):\n%s", ready, stream, done, strings.Join(lines, "\n"))
	}
}

// On a GPU with ncclpg the flat path orders the all-reduce by events and synchronises
// neither the device nor a stream, and reads nothing to the host.
func TestFlatReduceOrderedByEventsWithoutDeviceSync(t *testing.T) {
	logPath := withFakeNCCL(t)
	g, err := ncclpg.New(context.Background(), ncclpg.Config{Size: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	weights := [][]float32{{1, 2, 3, 4, 5, 6}, {-0.5, 0.25, 8, 9}}
	params := withGrads(t, weights...)
	red, ok := useFlat(g, fakeCUDA, false)
	if !ok {
		t.Fatal("useFlat refuses an NCCL group on its own GPU")
	}
	syncs, reads := deviceSyncs.Load(), tensorkit.HostReads()
	if err := allReduceFlat(context.Background(), red, params, fakeCUDA, 0); err != nil {
		t.Fatal(err)
	}
	if n := deviceSyncs.Load() - syncs; n != 0 {
		t.Errorf("%d device-wide synchronisations on the flat path, want 0", n)
	}
	if n := tensorkit.HostReads() - reads; n != 0 {
		t.Errorf("%d host reads on the flat path, want 0", n)
	}
	checkOrderedPath(t, readCallLog(t, logPath))
	// One rank: the sum is each gradient itself, scattered back in place.
	if got := gradsOfParams(t, params); !slices.EqualFunc(got, weights, slices.Equal) {
		t.Errorf("gradients after the one-rank all-reduce = %v, want %v", got, weights)
	}
}

// A reducer of CUDA memory that cannot order by events still gets the device
// synchronised before its collective: the counter sees it (on this CPU-only libtorch the
// synchronisation itself may fail), and no event is recorded.
func TestFlatReducePlainRawReducerSynchronisesTheDevice(t *testing.T) {
	logPath := withFakeNCCL(t)
	g, err := ncclpg.New(context.Background(), ncclpg.Config{Size: 1, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	plain := struct{ collective.RawAllReducer }{g}
	params := withGrads(t, []float32{1, 2}, []float32{3})
	syncs := deviceSyncs.Load()
	err = allReduceFlat(context.Background(), plain, params, fakeCUDA, 0)
	if n := deviceSyncs.Load() - syncs; n != 1 {
		t.Errorf("%d device-wide synchronisations (err %v), want 1", n, err)
	}
	if log := readCallLog(t, logPath); strings.Contains(log, "cudaEventRecord") {
		t.Errorf("a plain raw reducer recorded events:\n%s", log)
	}
}

// Two ranks in this process meet through the fakes' shared directory and sum their
// gradients through the ordered path: each gradient ends as the elementwise sum of both
// ranks' weights (halves and small integers, so the float32 sum is exact), and neither
// rank synchronises the device.
func TestFlatReduceTwoRanksOrdered(t *testing.T) {
	withFakeNCCL(t)
	weights := [2][][]float32{
		{{1, 2, 3, 4, 5, 6}, {-0.5, 0.25, 8, 9}},
		{{10, -2, 0.5, 4, 0, 1}, {0.5, 0.25, -8, 1}},
	}
	want := [][]float32{{11, 0, 3.5, 8, 5, 7}, {0, 0.5, 0, 10}}
	groups := twoFakeNCCLRanks(t)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	params := [2][]ts.NamedTensor{withGrads(t, weights[0]...), withGrads(t, weights[1]...)}
	syncs := deviceSyncs.Load()
	for r, g := range groups {
		wg.Go(func() { errs[r] = allReduceFlat(context.Background(), g, params[r], fakeCUDA, r) })
	}
	wg.Wait()
	if n := deviceSyncs.Load() - syncs; n != 0 {
		t.Errorf("%d device-wide synchronisations, want 0", n)
	}
	for r := range groups {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if got := gradsOfParams(t, params[r]); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("rank %d: reduced gradients = %v, want %v", r, got, want)
		}
	}
}

// twoFakeNCCLRanks forms two ncclpg ranks in this process on the fakes (withFakeNCCL
// first); they meet through the fakes' shared directory and close when the test ends.
func twoFakeNCCLRanks(t *testing.T) []*ncclpg.Group {
	t.Helper()
	t.Setenv("FAKE_NCCL_SHARED_DIR", t.TempDir())
	store := newOneKeyStore()
	groups := make([]*ncclpg.Group, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r := range groups {
		wg.Go(func() {
			groups[r], errs[r] = ncclpg.New(context.Background(), ncclpg.Config{Rank: r, Size: 2, Store: store, Timeout: time.Minute})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
		t.Cleanup(func() { _ = groups[r].Close() })
	}
	return groups
}

// oneKeyStore is a collective.Store in memory for ranks of one process: Lookup waits
// until some Publish (the unique id is the only key).
type oneKeyStore struct {
	once sync.Once
	set  chan struct{}
	val  []byte
}

func newOneKeyStore() *oneKeyStore { return &oneKeyStore{set: make(chan struct{})} }

func (s *oneKeyStore) Publish(_ context.Context, _ string, v []byte) error {
	s.once.Do(func() { s.val = slices.Clone(v); close(s.set) })
	return nil
}

func (s *oneKeyStore) Lookup(ctx context.Context, _ string) ([]byte, error) {
	select {
	case <-s.set:
		return s.val, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func readCallLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
