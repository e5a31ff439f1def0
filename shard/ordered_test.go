package shard

import (
	"context"
	"slices"
	"testing"
	"unsafe"

	"github.com/sugarme/gotch"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// recordingGatherer stands in for an NCCL group (there is no GPU here): it counts
// which all-gather the Gatherer called, keeps the stream it was ordered against, and
// gathers as a group of one rank does (recv = send).
type recordingGatherer struct {
	plain, ordered int
	stream         uintptr
}

func (f *recordingGatherer) AllGatherRaw(_ context.Context, send, recv unsafe.Pointer, n int, _ collective.DType) error {
	f.plain++
	gatherAlone(send, recv, n)
	return nil
}

func (f *recordingGatherer) AllGatherRawOrdered(_ context.Context, send, recv unsafe.Pointer, n int, _ collective.DType, stream uintptr) error {
	f.ordered++
	f.stream = stream
	gatherAlone(send, recv, n)
	return nil
}

// gatherAlone is a one-rank all-gather of n bytes.
func gatherAlone(send, recv unsafe.Pointer, n int) {
	copy(unsafe.Slice((*byte)(recv), n), unsafe.Slice((*byte)(send), n))
}

// runOne runs one request of the bytes of send through g.run and returns what it
// gathered.
func runOne(t *testing.T, g *Gatherer, send []byte) ([]byte, error) {
	t.Helper()
	recv := make([]byte, len(send))
	r := &request{send: unsafe.Pointer(&send[0]), recv: unsafe.Pointer(&recv[0]), bytes: len(send), done: make(chan struct{})}
	g.run(r)
	select {
	case <-r.done:
	default:
		t.Fatal("run returned without closing the request's done channel")
	}
	return recv, r.err
}

// On a GPU, a stream-ordered group's gather is ordered against libtorch's stream by
// events instead of a device synchronisation, so that the next block's gather runs
// beside the current block's kernels; on the CPU the plain all-gather runs.
func TestRunOrdersGPUGathersByEvents(t *testing.T) {
	send := []byte{3, 1, 4, 1, 5, 9, 2, 6}
	for _, tc := range []struct {
		dev            gotch.Device
		plain, ordered int
	}{
		{gotch.CudaBuilder(0), 0, 1},
		{gotch.CPU, 1, 0},
	} {
		f := &recordingGatherer{stream: 0xbad}
		g := &Gatherer{ctx: context.Background(), raw: f, dev: tc.dev}
		got, err := runOne(t, g, send)
		if err != nil {
			t.Fatalf("%v: %v", tc.dev, err)
		}
		if !slices.Equal(got, send) {
			t.Errorf("%v: gathered %v, want %v", tc.dev, got, send)
		}
		if f.plain != tc.plain || f.ordered != tc.ordered || g.syncs.Load() != 0 {
			t.Errorf("%v: %d plain and %d ordered gathers, %d device synchronisations; want %d, %d, 0",
				tc.dev, f.plain, f.ordered, g.syncs.Load(), tc.plain, tc.ordered)
		}
		if tc.ordered == 1 && f.stream != collective.DefaultStream {
			t.Errorf("ordered against stream %#x, want libtorch's %#x", f.stream, collective.DefaultStream)
		}
	}
}
