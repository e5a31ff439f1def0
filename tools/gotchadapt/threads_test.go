package main

import (
	"runtime"
	"sync"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// libtorch's error message is thread-local in gotch's C layer and read by a second cgo
// call: a goroutine that moved to another OS thread between an op and that read would
// miss the op's error (and take its garbage output for a tensor) while another would
// see an error that is not its own. The adapted gotch runs every ts function that reads
// the error on a locked thread. Goroutines that never lock their thread call an op that
// fails (a stubbed one) and one that succeeds, many times, under scheduler pressure:
// every failing call must report its error and no successful call a stale one.
func TestErrorsReachTheirCallerAcrossThreads(t *testing.T) {
	q, err := ts.Ones([]int64{1, 2, 4}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Drop()
	if out, err := ts.ScaledDotProductAttention(q, q, q, ts.None, 0, false, nil); err == nil {
		out.Drop()
		t.Skip("scaled_dot_product_attention works with this libtorch: no failing op to call")
	}
	const workers, calls = 8, 400
	var missed, spurious sync.Map
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				if out, err := ts.ScaledDotProductAttention(q, q, q, ts.None, 0, false, nil); err == nil {
					missed.Store(w*calls+i, true)
					_ = out // garbage: never touched
				}
				runtime.Gosched()
				s, err := q.Sum(gotch.Float, false)
				if err != nil {
					spurious.Store(w*calls+i, err.Error())
					continue
				}
				s.Drop()
			}
		}()
	}
	wg.Wait()
	count := func(m *sync.Map) (n int) {
		m.Range(func(any, any) bool { n++; return true })
		return n
	}
	if n := count(&missed); n > 0 {
		t.Errorf("%d of %d failing calls returned no error", n, workers*calls)
	}
	if n := count(&spurious); n > 0 {
		t.Errorf("%d of %d successful calls returned another call's error", n, workers*calls)
	}
}
