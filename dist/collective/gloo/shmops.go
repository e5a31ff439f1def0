package gloo

import (
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// The collectives on the shared-memory transport (shm.go), a window at a time.
// Each rank reads the peers' parts straight from their windows: an all-gather
// copies them in rank order, a reduction folds them in rank order, so every
// rank computes the same bits (Gloo's ring folds in an order that depends on
// the rank; for two ranks both give the same result, since a+b == b+a).

// viaShm runs op on the transport when g has one; ok is false when the call
// must go through Gloo instead.
func (g *Group) viaShm(timeoutMs int64, op func(s *shm, deadline time.Time) nativeStatus) (st nativeStatus, ok bool) {
	if g.shm == nil {
		return nativeStatus{}, false
	}
	return op(g.shm, time.Now().Add(time.Duration(timeoutMs)*time.Millisecond)), true
}

// raw is n bytes at p as a slice.
func raw(p unsafe.Pointer, n int) []byte { return unsafe.Slice((*byte)(p), n) }

// windows runs step for each window of n units, per units at a time
// (offset and length in units), until one fails.
func windows(n, per int, step func(off, k int) nativeStatus) nativeStatus {
	for off := 0; off < n; off += per {
		if st := step(off, min(per, n-off)); st.code != codeOK {
			return st
		}
	}
	return nativeStatus{code: codeOK}
}

func (s *shm) allGather(send, recv unsafe.Pointer, bytes int, deadline time.Time) nativeStatus {
	src, dst := raw(send, bytes), raw(recv, bytes*s.size)
	return windows(bytes, s.window, func(off, k int) nativeStatus {
		return s.exchange(deadline,
			func(own []byte) { copy(own, src[off:off+k]) },
			func(wins [][]byte) {
				for p, w := range wins {
					copy(dst[p*bytes+off:p*bytes+off+k], w[:k])
				}
			})
	})
}

func (s *shm) broadcast(buf unsafe.Pointer, bytes, root int, deadline time.Time) nativeStatus {
	b := raw(buf, bytes)
	return windows(bytes, s.window, func(off, k int) nativeStatus {
		var write func([]byte)
		if s.rank == root {
			write = func(own []byte) { copy(own, b[off:off+k]) }
		}
		return s.exchange(deadline, write, func(wins [][]byte) {
			if s.rank != root {
				copy(b[off:off+k], wins[root][:k])
			}
		})
	})
}

// allReduce folds every rank's n elements into buf; reduceScatter folds block
// Rank() of every rank's send into recv. Both fold the ranks' windows in rank
// order, this rank's own included (its window holds what it wrote).
//
// With two ranks each rank folds the whole window. From three on, rank r folds
// only its r-th stretch of the window, into its result and its own window, and
// every rank then copies the other stretches from their owners' windows: each
// rank reads two windows' worth instead of one per rank. Both give the same
// bits (every element is folded over the ranks in rank order).
func (s *shm) allReduce(buf unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp, deadline time.Time) nativeStatus {
	es := dt.Size()
	return windows(n, s.window/es, func(off, k int) nativeStatus {
		at := unsafe.Add(buf, off*es)
		write := func(own []byte) { copy(own, raw(at, k*es)) }
		if s.size < 3 {
			return s.exchange(deadline, write, func(wins [][]byte) { foldWindows(at, wins, 0, k, dt, op, s.size) })
		}
		stretch := func(q int) (lo, hi int) { return q * k / s.size, (q + 1) * k / s.size }
		return s.exchange(deadline, write,
			func(wins [][]byte) {
				lo, hi := stretch(s.rank)
				if hi > lo {
					foldWindows(unsafe.Add(at, lo*es), wins, lo, hi-lo, dt, op, s.size)
					copy(wins[s.rank][lo*es:hi*es], raw(unsafe.Add(at, lo*es), (hi-lo)*es))
				}
			},
			func(wins [][]byte) {
				for q, w := range wins {
					if lo, hi := stretch(q); q != s.rank {
						copy(raw(unsafe.Add(at, lo*es), (hi-lo)*es), w[lo*es:hi*es])
					}
				}
			})
	})
}

// reduceScatter's window holds, for a stretch of k elements of the block, the
// stretch of every rank's block: rank r folds the r-th of them.
func (s *shm) reduceScatter(send, recv unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp, deadline time.Time) nativeStatus {
	es := dt.Size()
	return windows(n, s.window/(es*s.size), func(off, k int) nativeStatus {
		return s.exchange(deadline,
			func(own []byte) {
				for q := range s.size {
					copy(own[q*k*es:(q+1)*k*es], raw(unsafe.Add(send, (q*n+off)*es), k*es))
				}
			},
			func(wins [][]byte) { foldWindows(unsafe.Add(recv, off*es), wins, s.rank*k, k, dt, op, s.size) })
	})
}

func (s *shm) barrier(deadline time.Time) nativeStatus { return s.exchange(deadline, nil, nil) }

// foldWindows writes into dst the fold with op of elements [off, off+n) of
// every window, in rank order (divided by size for Avg).
func foldWindows(dst unsafe.Pointer, wins [][]byte, off, n int, dt collective.DType, op collective.ReduceOp, size int) {
	switch dt {
	case collective.Float32:
		fold(unsafe.Slice((*float32)(dst), n), typed[float32](wins, off, n), op, size)
	case collective.Float64:
		fold(unsafe.Slice((*float64)(dst), n), typed[float64](wins, off, n), op, size)
	}
}

// typed views elements [off, off+n) of each window as T.
func typed[T float32 | float64](wins [][]byte, off, n int) [][]T {
	out := make([][]T, len(wins))
	for p, w := range wins {
		out[p] = unsafe.Slice((*T)(unsafe.Pointer(&w[0])), off+n)[off:]
	}
	return out
}

// foldChunk is how many elements fold takes from every source before moving
// on, so that the destination's chunk stays in cache across the sources.
const foldChunk = 4096

func fold[T float32 | float64](dst []T, srcs [][]T, op collective.ReduceOp, size int) {
	for lo := 0; lo < len(dst); lo += foldChunk {
		hi := min(lo+foldChunk, len(dst))
		d := dst[lo:hi]
		copy(d, srcs[0][lo:hi])
		for _, src := range srcs[1:] {
			x := src[lo:hi]
			switch op {
			case collective.Max:
				for i := range d {
					if x[i] > d[i] {
						d[i] = x[i]
					}
				}
			case collective.Min:
				for i := range d {
					if x[i] < d[i] {
						d[i] = x[i]
					}
				}
			default: // Sum, Avg
				for i := range d {
					d[i] += x[i]
				}
			}
		}
		if op == collective.Avg {
			div := T(size)
			for i := range d {
				d[i] /= div
			}
		}
	}
}
