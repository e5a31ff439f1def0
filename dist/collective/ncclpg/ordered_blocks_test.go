package ncclpg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/nccl"
)

// The stream-ordered all-gather and reduce-scatter (a sharded backbone's gathers and
// model.split_delta's exchange on GPUs) put the same two events around their
// collective as the ordered all-reduce, reuse the group's two events, and synchronise
// nothing.
func TestGatherAndScatterOrderedEventsAroundTheCollective(t *testing.T) {
	g, logPath := newSolo(t, Config{Timeout: failAfter})
	send := []float64{1.5, -2, 4}
	recv := make([]float64, 3)
	sum := make([]float64, 3)
	ps, pr, psum := unsafe.Pointer(&send[0]), unsafe.Pointer(&recv[0]), unsafe.Pointer(&sum[0])
	const caller = 0x5eed // a stream handle the fake passes through untouched
	var og collective.StreamOrderedAllGatherer = g
	var os collective.StreamOrderedReduceScatterer = g
	if err := og.AllGatherRawOrdered(context.Background(), ps, pr, len(send), collective.Float64, caller); err != nil {
		t.Fatal(err)
	}
	if err := os.ReduceScatterRawOrdered(context.Background(), pr, psum, len(recv), collective.Float64, collective.Sum, caller); err != nil {
		t.Fatal(err)
	}
	// One rank: the gather copies send, the reduce-scatter its only block.
	if !slices.Equal(recv, send) || !slices.Equal(sum, send) {
		t.Errorf("one rank: gathered %v, reduced %v, want both %v", recv, sum, send)
	}
	ready, done, s := uintptr(g.events[0]), uintptr(g.events[1]), uintptr(g.stream)
	if ready == 0 || done == 0 || ready == done {
		t.Fatalf("events ready %#x, done %#x: want two distinct events", ready, done)
	}
	calls := []string{
		fmt.Sprintf("ncclAllGather send=%#x recv=%#x count=3 dt=8 op=0 root=0 stream=%#x", uintptr(ps), uintptr(pr), s),
		fmt.Sprintf("ncclReduceScatter send=%#x recv=%#x count=3 dt=8 op=0 root=0 stream=%#x", uintptr(pr), uintptr(psum), s),
	}
	var want []string
	for i, call := range calls {
		want = append(want,
			fmt.Sprintf("cudaEventRecord event=%#x stream=%#x", ready, caller),
			fmt.Sprintf("cudaStreamWaitEvent stream=%#x event=%#x recorded=%d", s, ready, i+1),
			call,
			fmt.Sprintf("cudaEventRecord event=%#x stream=%#x", done, s),
			fmt.Sprintf("cudaStreamWaitEvent stream=%#x event=%#x recorded=%d", caller, done, i+1),
		)
	}
	log := readLog(t, logPath)
	if got := orderCalls(log); !slices.Equal(got, want) {
		t.Errorf("device calls =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(log, "cudaDeviceSynchronize") || strings.Count(log, "cudaEventCreateWithFlags") != 2 {
		t.Errorf("want no device synchronisation and the two events made once:\n%s", log)
	}
}

// Two ranks gather and reduce-scatter real values through the ordered calls (the
// fake's device memory is host memory: this proves the calls and the layout).
func TestTwoRanksGatherAndScatterOrdered(t *testing.T) {
	const n = 257
	groups := twoRanks(t)
	mem := func(bytes int) (nccl.DevicePtr, unsafe.Pointer) {
		p, err := nccl.Malloc(bytes)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nccl.Free(p) })
		return p, *(*unsafe.Pointer)(unsafe.Pointer(&p))
	}
	type bufs struct {
		send, all, mine    nccl.DevicePtr
		sendP, allP, mineP unsafe.Pointer
		input              []float32
	}
	b := make([]bufs, 2)
	for r := range b {
		b[r].send, b[r].sendP = mem(n * 4)
		b[r].all, b[r].allP = mem(2 * n * 4)
		b[r].mine, b[r].mineP = mem(n * 4)
		b[r].input = make([]float32, n)
		for i := range b[r].input {
			b[r].input[i] = float32(i%13) + 0.5*float32(r)
		}
		if err := nccl.CopyToDevice(b[r].send, b[r].input); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for r, g := range groups {
		wg.Go(func() {
			errs[r] = g.AllGatherRawOrdered(context.Background(), b[r].sendP, b[r].allP, n, collective.Float32, 0)
			if errs[r] == nil { // then each rank's block r of the gathered pair, summed over ranks
				errs[r] = g.ReduceScatterRawOrdered(context.Background(), b[r].allP, b[r].mineP, n, collective.Float32, collective.Sum, 0)
			}
		})
	}
	wg.Wait()
	for r := range groups {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		all, mine := make([]float32, 2*n), make([]float32, n)
		if err := errors.Join(nccl.CopyFromDevice(all, b[r].all), nccl.CopyFromDevice(mine, b[r].mine)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(all, slices.Concat(b[0].input, b[1].input)) {
			t.Errorf("rank %d: gathered values not rank 0's then rank 1's", r)
		}
		for i, v := range mine { // both ranks hold the same gathered pair: block r twice
			if want := 2 * b[r].input[i]; v != want {
				t.Fatalf("rank %d: reduced[%d] = %v, want %v", r, i, v, want)
			}
		}
	}
}

func TestGatherAndScatterOrderedBadArguments(t *testing.T) {
	g, _ := newSolo(t, Config{Timeout: failAfter})
	v := []float32{1, 2}
	p := unsafe.Pointer(&v[0])
	for _, bad := range []error{
		g.AllGatherRawOrdered(context.Background(), nil, p, 1, collective.Float32, 0),
		g.AllGatherRawOrdered(context.Background(), p, p, 1, collective.DType(99), 0),
		g.ReduceScatterRawOrdered(context.Background(), p, nil, 1, collective.Float32, collective.Sum, 0),
		g.ReduceScatterRawOrdered(context.Background(), p, p, 1, collective.Uint8, collective.Sum, 0),
		g.ReduceScatterRawOrdered(context.Background(), p, p, 1, collective.Float32, collective.ReduceOp(9), 0),
	} {
		if !errors.Is(bad, collective.ErrConfig) || !strings.Contains(bad.Error(), "stream-ordered") {
			t.Errorf("bad ordered call: %v, want ErrConfig naming the call", bad)
		}
	}
}
