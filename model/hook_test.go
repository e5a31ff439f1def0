package model_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/internal/testkit/tensortest"
	"github.com/lrtrain/lrtrain/internal/testkit/tinymodel"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/model/hfinit"
)

// recordingHook logs the calls; failAt makes Before(failAt) fail.
type recordingHook struct {
	calls  []string
	failAt int
}

func (h *recordingHook) Before(i int) error {
	h.calls = append(h.calls, fmt.Sprintf("B%d", i))
	if i == h.failAt {
		return errors.New("injected")
	}
	return nil
}

func (h *recordingHook) After(i int) error {
	h.calls = append(h.calls, fmt.Sprintf("A%d", i))
	return nil
}

// lendingHook defers every frozen weight and, in Before, lends the deferred
// placeholders the storage of the reference model's tensors (set_), taking it back in
// After. With lend false it never binds them.
type lendingHook struct {
	ref    map[string]*ts.Tensor
	lend   bool
	owners map[string]*ts.Tensor // placeholder the model holds, by name
	spare  map[string]*ts.Tensor // a second placeholder to return to
	blocks map[int][]string
	t      *testing.T
}

func (h *lendingHook) DeferWeight(name, _ string, ph *ts.Tensor) bool {
	spare, err := ph.Detach(false)
	if err != nil {
		h.t.Fatal(err)
	}
	h.owners[name], h.spare[name] = ph, spare
	i := -1 // embeddings
	switch {
	case strings.HasPrefix(name, "model.layers."):
		fmt.Sscanf(strings.TrimPrefix(name, "model.layers."), "%d", &i)
	case strings.HasPrefix(name, "roberta.encoder.layer."):
		fmt.Sscanf(strings.TrimPrefix(name, "roberta.encoder.layer."), "%d", &i)
	case !strings.HasPrefix(name, "model.embed") && !strings.HasPrefix(name, "roberta.embeddings."):
		i = 1 << 30 // head
	}
	h.blocks[i] = append(h.blocks[i], name)
	return true
}

func (h *lendingHook) set(dst, src *ts.Tensor) {
	var out lib.Ctensor
	lib.AtgSetSourceTensor_(&out, lib.Ctensor(dst.Ctensor()), lib.Ctensor(src.Ctensor()))
	if err := ts.TorchErr(); err != nil {
		h.t.Fatal(err)
	}
	lib.AtFree(out)
}

func (h *lendingHook) names(i int) []string {
	if i >= 2 { // tiny llama and RoBERTa: 2 blocks
		i = 1 << 30
	}
	return h.blocks[i]
}

func (h *lendingHook) Before(i int) error {
	if h.lend {
		for _, n := range h.names(i) {
			h.set(h.owners[n], h.ref[n])
		}
	}
	return nil
}

func (h *lendingHook) After(i int) error {
	for _, n := range h.names(i) {
		h.set(h.owners[n], h.spare[n])
	}
	return nil
}

func TestBlockHookOrder(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := tinymodel.Write(t, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1})
	h := &recordingHook{failAt: 99}
	m, err := model.Load(dir, model.WithBlockHook(h))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.NumBlocks() != 2 {
		t.Fatalf("NumBlocks %d, want 2", m.NumBlocks())
	}
	ids := ts.MustOfSlice([]int64{1, 5, 9, 200, 7, 3}).MustView([]int64{1, 6}, true)
	defer ids.Drop()

	noGrad(t, func() {
		out, err := m.Forward(model.Inputs{InputIDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		out.Drop()
	})
	want := []string{"B-1", "A-1", "B0", "A0", "B1", "A1", "B2", "A2"}
	if !slices.Equal(h.calls, want) {
		t.Errorf("Forward called %v, want %v", h.calls, want)
	}

	if _, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 2), rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	m.Train(true)
	h.calls = nil
	if _, err := m.Forward(model.Inputs{InputIDs: ids}); !errors.Is(err, model.ErrUnsupported) {
		t.Errorf("Forward recording autograd under a hook: %v, want ErrUnsupported", err)
	}
	if !slices.Equal(h.calls, []string{"B-1", "A-1", "B0", "A0"}) {
		t.Errorf("the failed Forward called %v, want it to stop after block 0 with its After", h.calls)
	}

	m.SetCheckpointing(true)
	h.calls = nil
	p, err := m.Begin(model.Inputs{InputIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"B-1", "A-1", "B0", "A0", "B1", "A1", "B2"}; !slices.Equal(h.calls, want) {
		t.Errorf("checkpointed forward called %v, want %v (head held for backward)", h.calls, want)
	}
	backwardSum(t, p)
	want = []string{"B-1", "A-1", "B0", "A0", "B1", "A1", "B2", "A2", "B1", "A1", "B0", "A0"}
	if !slices.Equal(h.calls, want) {
		t.Errorf("checkpointed step called %v, want %v", h.calls, want)
	}

	h.calls, h.failAt = nil, 1
	noGrad(t, func() {
		_, err := m.Forward(model.Inputs{InputIDs: ids})
		if err == nil || !strings.Contains(err.Error(), "before the block 1: injected") {
			t.Errorf("a failing hook gave %v", err)
		}
	})
}

func TestDeferredWeightsAreBoundByTheHook(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := tinymodel.Write(t, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 3})
	ref, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	refW := map[string]*ts.Tensor{}
	for _, w := range ref.Weights() {
		refW[w.Name] = w.Tensor
	}
	ids := ts.MustOfSlice([]int64{1, 5, 9, 200, 7, 3, 44, 2}).MustView([]int64{2, 4}, true)
	defer ids.Drop()
	var want []float64
	noGrad(t, func() {
		out, err := ref.Forward(model.Inputs{InputIDs: ids})
		if err != nil {
			t.Fatal(err)
		}
		want = tensortest.Values(t, out)
		out.Drop()
	})

	for _, lend := range []bool{true, false} {
		h := &lendingHook{ref: refW, lend: lend, owners: map[string]*ts.Tensor{},
			spare: map[string]*ts.Tensor{}, blocks: map[int][]string{}, t: t}
		m, err := model.Load(dir, model.WithBlockHook(h))
		if err != nil {
			t.Fatal(err)
		}
		if len(h.owners) != len(refW) {
			t.Errorf("%d weights deferred, the model has %d", len(h.owners), len(refW))
		}
		pc, err := m.CountParameters()
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := ref.CountParameters()
		if pc.Frozen != rc.Frozen {
			t.Errorf("frozen parameters %d with placeholders, %d loaded", pc.Frozen, rc.Frozen)
		}
		noGrad(t, func() {
			out, err := m.Forward(model.Inputs{InputIDs: ids})
			if err != nil {
				t.Fatal(err)
			}
			got := tensortest.Values(t, out)
			out.Drop()
			switch {
			case lend && !slices.Equal(got, want):
				t.Errorf("logits with lent weights differ from the loaded model's")
			case !lend && !math.IsNaN(got[0]):
				t.Errorf("logits with unbound placeholders: %v, want NaN", got[0])
			}
		})
		m.Close()
		for _, s := range h.spare {
			s.Drop()
		}
	}
}

// noGrad runs fn with grad mode off (the caller has locked its OS thread).
func noGrad(t *testing.T, fn func()) {
	t.Helper()
	prev, err := ts.GradSetEnabled(false)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.GradSetEnabled(prev)
	fn()
}

// schedulingHook is a recordingHook that is also a model.BlockScheduler: it logs
// each schedule as S[...] (S[] for nil).
type schedulingHook struct{ recordingHook }

func (h *schedulingHook) Schedule(order []int) error {
	h.calls = append(h.calls, fmt.Sprintf("S%v", order))
	return nil
}

// A BlockScheduler hears, before each run of pieces, the order of the Before calls
// that follow, and nil when a run ends early or a backward is over; every Before
// then follows the announced order.
func TestBlockSchedulerOrder(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := tinymodel.Write(t, hfinit.Options{Arch: "llama", Preset: "tiny", Seed: 1})
	h := &schedulingHook{recordingHook{failAt: 99}}
	m, err := model.Load(dir, model.WithBlockHook(h))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ids, err := model.Int64Tensor([]int64{1, 5, 9, 200, 7, 3}, 1, 6)
	if err != nil {
		t.Fatal(err)
	}
	defer ids.Drop()
	forward := func() error {
		var err error
		noGrad(t, func() {
			var out *ts.Tensor
			if out, err = m.Forward(model.Inputs{InputIDs: ids}); err == nil {
				out.Drop()
			}
		})
		return err
	}
	if err := forward(); err != nil {
		t.Fatal(err)
	}
	want := []string{"S[-1 0 1 2]", "B-1", "A-1", "B0", "A0", "B1", "A1", "B2", "A2"}
	if !slices.Equal(h.calls, want) {
		t.Errorf("Forward called %v, want %v", h.calls, want)
	}

	if _, err := m.Inject(specOf(adapter.Targets{AllLinear: true}, 2), rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	m.Train(true)
	m.SetCheckpointing(true)
	h.calls = nil
	p, err := m.Begin(model.Inputs{InputIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	backwardSum(t, p)
	// A training pass schedules neither the head (prepared when it starts, not
	// beside the last block's forward) nor backward's top block (nothing gathered
	// ahead while the head's backward or the top block's, beside every block's
	// activations, runs): the rest of backward is scheduled after the top block.
	want = []string{"S[-1 0 1]", "B-1", "A-1", "B0", "A0", "B1", "A1", "B2",
		"A2", "B1", "A1", "S[0]", "B0", "A0", "S[]"}
	if !slices.Equal(h.calls, want) {
		t.Errorf("checkpointed step called %v, want %v", h.calls, want)
	}

	h.calls, h.failAt = nil, 1
	if err := forward(); err == nil || !strings.Contains(err.Error(), "before the block 1: injected") {
		t.Fatalf("a failing hook gave %v", err)
	}
	want = []string{"S[-1 0 1 2]", "B-1", "A-1", "B0", "A0", "B1", "S[]"}
	if !slices.Equal(h.calls, want) {
		t.Errorf("a Forward whose hook fails at block 1 called %v, want %v", h.calls, want)
	}
}

// backwardSum runs p's backward pass from the sum of its logits and closes it.
func backwardSum(t *testing.T, p *model.Pass) {
	t.Helper()
	loss, err := p.Logits().Sum(p.Logits().DType(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Backward(loss); err != nil {
		t.Fatal(err)
	}
	loss.Drop()
	p.Close()
}
