package gloo_test

import (
	"bytes"
	"context"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
)

// TestAllReduceRawOnForeignMemory reduces float64 buffers that Go does not
// own (mmap'ed, as a libtorch tensor's data would be) through the raw entry
// point, between two ranks.
func TestAllReduceRawOnForeignMemory(t *testing.T) {
	const n = 100_003
	gs := groups(t, 2, 10*time.Second)
	bufs := make([][]float64, len(gs))
	for r := range gs {
		mem, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Munmap(mem) })
		bufs[r] = unsafe.Slice((*float64)(unsafe.Pointer(&mem[0])), n)
		for i := range bufs[r] {
			bufs[r][i] = input(collective.Max, r, i)
		}
	}
	errs := make([]error, len(gs))
	var wg sync.WaitGroup
	for r, g := range gs {
		var raw collective.RawAllReducer = g
		wg.Go(func() {
			errs[r] = raw.AllReduceRaw(context.Background(), unsafe.Pointer(&bufs[r][0]), n, collective.Float64, collective.Max)
		})
	}
	wg.Wait()
	for r := range gs {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		if s := firstMismatch(bufs[r], func(i int) float64 { return reduced(collective.Max, 2, i) }); s != "" {
			t.Fatalf("rank %d: %s", r, s)
		}
	}
}

// TestAllGatherRawOnForeignMemory gathers bytes, float32s and float64s that Go
// does not own (mmap'ed, as a CPU tensor's data would be) through the raw entry
// point, between three ranks, over TCP and over shared memory (windows of 4 KiB,
// so that the blocks cross many), from separate send buffers and in place (each
// rank's send its own block of recv, as NCCL defines an in-place all-gather): every
// rank ends with every block, in rank order, bit for bit.
func TestAllGatherRawOnForeignMemory(t *testing.T) {
	onThreeRanks(t, func(t *testing.T, gs []*gloo.Group) {
		for _, dt := range []collective.DType{collective.Uint8, collective.Float32, collective.Float64} {
			for _, inPlace := range []bool{false, true} {
				allGatherRaw(t, gs, dt, inPlace)
			}
		}
	})
}

// onThreeRanks runs f on three ranks over TCP, then on three through shared
// memory with windows of 4 KiB (so that the tests' blocks cross many).
func onThreeRanks(t *testing.T, f func(t *testing.T, gs []*gloo.Group)) {
	t.Run("tcp", func(t *testing.T) { f(t, groups(t, 3, 10*time.Second)) })
	t.Run("shm", func(t *testing.T) {
		gs, _ := shmGroups(t, 3, 4096)
		f(t, gs)
	})
}

func allGatherRaw(t *testing.T, gs []*gloo.Group, dt collective.DType, inPlace bool) {
	const n = 10_007
	size, nb := len(gs), n*dt.Size()
	want := func(r int) []byte {
		b := make([]byte, nb)
		for i := range b {
			b[i] = byte(i*7 + r*31)
		}
		return b
	}
	sends, recvs := make([][]byte, size), make([][]byte, size)
	for r := range gs {
		for _, b := range []*[]byte{&sends[r], &recvs[r]} {
			mem, err := syscall.Mmap(-1, 0, nb*size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Munmap(mem) })
			*b = mem
		}
		if inPlace {
			sends[r] = recvs[r][r*nb : (r+1)*nb]
		} else {
			sends[r] = sends[r][:nb]
		}
		copy(sends[r], want(r))
	}
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r, g := range gs {
		var raw collective.RawAllGatherer = g
		wg.Go(func() {
			errs[r] = raw.AllGatherRaw(context.Background(), unsafe.Pointer(&sends[r][0]), unsafe.Pointer(&recvs[r][0]), n, dt)
		})
	}
	wg.Wait()
	for r := range gs {
		if errs[r] != nil {
			t.Fatalf("%s (in place %v) rank %d: %v", dt, inPlace, r, errs[r])
		}
		for q := range size {
			if got := recvs[r][q*nb : (q+1)*nb]; !bytes.Equal(got, want(q)) {
				t.Fatalf("%s (in place %v) rank %d: block %d differs from rank %d's send", dt, inPlace, r, q, q)
			}
		}
	}
}

// TestReduceScatterRawOnForeignMemory reduce-scatters float32 and float64
// buffers that Go does not own (mmap'ed) between three ranks, over TCP and over
// shared memory (windows of 4 KiB), into a separate buffer and in place (recv
// this rank's own block of send, as NCCL defines an in-place reduce-scatter):
// rank r ends with block r of the elementwise sum, each element the sum of the
// three ranks' inputs (exact: the inputs are small integers), and in place the
// other blocks of its send untouched.
func TestReduceScatterRawOnForeignMemory(t *testing.T) {
	onThreeRanks(t, func(t *testing.T, gs []*gloo.Group) {
		for _, dt := range []collective.DType{collective.Float32, collective.Float64} {
			for _, inPlace := range []bool{false, true} {
				reduceScatterRaw(t, gs, dt, inPlace)
			}
		}
	})
}

func reduceScatterRaw(t *testing.T, gs []*gloo.Group, dt collective.DType, inPlace bool) {
	const n = 10_007
	size := len(gs)
	sends, recvs := make([][]byte, size), make([][]byte, size)
	for r := range gs {
		for k, b := range []*[]byte{&sends[r], &recvs[r]} {
			nb := n * dt.Size() * (size - k*(size-1)) // send: size blocks, recv: one
			mem, err := syscall.Mmap(-1, 0, nb, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Munmap(mem) })
			*b = mem
		}
		for i := range n * size {
			setAt(sends[r], dt, i, input(collective.Sum, r, i))
		}
		if inPlace {
			recvs[r] = sends[r][r*n*dt.Size() : (r+1)*n*dt.Size()]
		}
	}
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r, g := range gs {
		var raw collective.RawReduceScatterer = g
		wg.Go(func() {
			errs[r] = raw.ReduceScatterRaw(context.Background(), unsafe.Pointer(&sends[r][0]), unsafe.Pointer(&recvs[r][0]), n, dt, collective.Sum)
		})
	}
	wg.Wait()
	for r := range gs {
		if errs[r] != nil {
			t.Fatalf("%s (in place %v) rank %d: %v", dt, inPlace, r, errs[r])
		}
		for i := range n {
			if got, want := at(recvs[r], dt, i), reduced(collective.Sum, size, r*n+i); got != want {
				t.Fatalf("%s (in place %v) rank %d: element %d of its block is %v, want %v", dt, inPlace, r, i, got, want)
			}
		}
		for i := range n * size {
			if i/n == r && inPlace {
				continue
			}
			if got, want := at(sends[r], dt, i), input(collective.Sum, r, i); got != want {
				t.Fatalf("%s (in place %v) rank %d: send element %d became %v, want %v", dt, inPlace, r, i, got, want)
			}
		}
	}
}

func setAt(b []byte, dt collective.DType, i int, v float64) {
	if dt == collective.Float32 {
		unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)[i] = float32(v)
		return
	}
	unsafe.Slice((*float64)(unsafe.Pointer(&b[0])), len(b)/8)[i] = v
}

func at(b []byte, dt collective.DType, i int) float64 {
	if dt == collective.Float32 {
		return float64(unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)[i])
	}
	return unsafe.Slice((*float64)(unsafe.Pointer(&b[0])), len(b)/8)[i]
}
