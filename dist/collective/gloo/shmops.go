package gloo

import (
	"time"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/collective"
)

// The collectives on the shared-memory transport (shm.go). Each rank reads
// the peers' contributions straight from their files: an all-gather copies
// them in rank order, a reduction folds them in rank order, so every rank
// computes the same bits (Gloo's ring folds in an order that depends on the
// rank; for two ranks both give the same result, since a+b == b+a).

// viaShm runs op on the transport when g has one and bytes per rank fit; ok
// is false when the call must go through Gloo instead.
func (g *Group) viaShm(bytes int, timeoutMs int64, op func(s *shm, deadline time.Time) nativeStatus) (st nativeStatus, ok bool) {
	s := g.shm
	if s == nil {
		return nativeStatus{}, false
	}
	deadline := time.Now().Add(time.Duration(timeoutMs) * time.Millisecond)
	fits, fail := s.fits(bytes, deadline)
	if fail != nil {
		return *fail, true
	}
	if !fits {
		return nativeStatus{}, false
	}
	return op(s, deadline), true
}

// raw is n bytes at p as a slice (n > 0).
func raw(p unsafe.Pointer, n int) []byte { return unsafe.Slice((*byte)(p), n) }

func (s *shm) allGather(send, recv unsafe.Pointer, bytes int, deadline time.Time) nativeStatus {
	src, dst := raw(send, bytes), raw(recv, bytes*s.size)
	return s.exchange(deadline,
		func(own []byte) { copy(own, src) },
		func(files [][]byte) {
			for p, f := range files {
				if p == s.rank {
					copy(dst[p*bytes:], src)
				} else {
					copy(dst[p*bytes:(p+1)*bytes], f)
				}
			}
		})
}

func (s *shm) broadcast(buf unsafe.Pointer, bytes, root int, deadline time.Time) nativeStatus {
	b := raw(buf, bytes)
	var write func([]byte)
	if s.rank == root {
		write = func(own []byte) { copy(own, b) }
	}
	return s.exchange(deadline, write, func(files [][]byte) {
		if s.rank != root {
			copy(b, files[root][:bytes])
		}
	})
}

// allReduce folds every rank's n elements into buf; reduceScatter folds block
// Rank() of every rank's send into recv. Both fold the ranks' files in rank
// order, this rank's own included (its file holds what it wrote).
func (s *shm) allReduce(buf unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp, deadline time.Time) nativeStatus {
	bytes := n * dt.Size()
	return s.exchange(deadline,
		func(own []byte) { copy(own, raw(buf, bytes)) },
		func(files [][]byte) { foldFiles(buf, files, 0, n, dt, op, s.size) })
}

func (s *shm) reduceScatter(send, recv unsafe.Pointer, n int, dt collective.DType, op collective.ReduceOp, deadline time.Time) nativeStatus {
	bytes := n * dt.Size()
	return s.exchange(deadline,
		func(own []byte) { copy(own, raw(send, bytes*s.size)) },
		func(files [][]byte) { foldFiles(recv, files, s.rank*n, n, dt, op, s.size) })
}

func (s *shm) barrier(deadline time.Time) nativeStatus { return s.exchange(deadline, nil, nil) }

// foldFiles writes into dst the fold with op of elements [off, off+n) of every
// file, in rank order (divided by size for Avg).
func foldFiles(dst unsafe.Pointer, files [][]byte, off, n int, dt collective.DType, op collective.ReduceOp, size int) {
	switch dt {
	case collective.Float32:
		fold(unsafe.Slice((*float32)(dst), n), typed[float32](files, off, n), op, size)
	case collective.Float64:
		fold(unsafe.Slice((*float64)(dst), n), typed[float64](files, off, n), op, size)
	}
}

// typed views elements [off, off+n) of each file as T.
func typed[T float32 | float64](files [][]byte, off, n int) [][]T {
	out := make([][]T, len(files))
	for p, f := range files {
		out[p] = unsafe.Slice((*T)(unsafe.Pointer(&f[0])), off+n)[off:]
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
