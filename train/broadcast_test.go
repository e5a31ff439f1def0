package train

import (
	"bytes"
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/gloo"
	"github.com/lrtrain/lrtrain/param"
)

// broadcastInputs is rank r's float32 and float64 parameters. Rank 0's hold what a sum
// of zeros would not keep: negative zeros, NaNs with payloads and a denormal (their bits
// are compared, not their values).
func broadcastInputs(t *testing.T, r int) []param.Tensor {
	f32 := []float32{math.Float32frombits(0x8000_0000), math.Float32frombits(0x7fc0_1234), 1e-40, 1.5}
	f64 := []float64{math.Copysign(0, -1), math.Float64frombits(0x7ff8_0000_dead_beef), 4.9e-324, -2.25, 1.0 / 3}
	if r != 0 {
		for i := range f32 {
			f32[i] = float32(7*r + i)
		}
		for i := range f64 {
			f64[i] = float64(-5*r - i)
		}
	}
	a, err := ts.OfSlice(f32)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ts.OfSlice(f64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Drop(); b.Drop() })
	return []param.Tensor{{Name: "a", Tensor: a, Trainable: true}, {Name: "b", Tensor: b}}
}

// Every rank ends with rank 0's parameters bit for bit: the broadcast moves bytes, and
// rank 0's own values are left as they were.
func TestBroadcastParamsCopiesRankZeroBitForBit(t *testing.T) {
	const size = 3
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	want := paramBytes(t, broadcastInputs(t, 0))
	got := make([][]byte, size)
	errs := make([]error, size)
	params := make([][]param.Tensor, size)
	for r := range size {
		params[r] = broadcastInputs(t, r)
	}
	var wg sync.WaitGroup
	for r := range size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			store, err := collective.DialStore(ctx, srv.Addr(), time.Minute)
			if err != nil {
				errs[r] = err
				return
			}
			g, err := gloo.New(ctx, collective.Config{Rank: r, Size: size, Store: store,
				Hostname: "127.0.0.1", Timeout: time.Minute})
			if err != nil {
				errs[r] = err
				return
			}
			defer g.Close()
			errs[r] = broadcastParams(ctx, g, params[r])
		}()
	}
	wg.Wait()
	for r := range size {
		if errs[r] != nil {
			t.Fatalf("rank %d: %v", r, errs[r])
		}
		got[r] = paramBytes(t, params[r])
		if !bytes.Equal(got[r], want) {
			t.Errorf("rank %d holds %x, want rank 0's %x", r, got[r], want)
		}
	}
}

// paramBytes concatenates the host bytes of list's tensors.
func paramBytes(t *testing.T, list []param.Tensor) []byte {
	var out []byte
	for _, p := range list {
		h, err := readHost(p.Name, p.Tensor)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.data...)
	}
	return out
}
