package peermem_test

import (
	"fmt"
	"runtime"
	"testing"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/peermem"
)

// BenchmarkReadAt times ReadAt (process_vm_readv of the data, then the page) beside a
// plain copy of the same bytes, at a sharded block's half (5.5 MiB: one peer's shard
// of the small preset's 11.1 MiB block at 2 ranks) and at smaller and larger sizes.
// The process reads itself: the kernel path is the one a peer's read takes.
//
//	go test -run '^$' -bench ReadAt ./dist/peermem/
func BenchmarkReadAt(b *testing.B) {
	self, err := peermem.Publish()
	if err != nil {
		b.Fatal(err)
	}
	defer self.Revoke()
	for _, n := range []int{64 << 10, 1 << 20, 5632 << 10, 32 << 20} {
		src, dst := make([]byte, n), make([]byte, n)
		for i := range src {
			src[i] = byte(i)
		}
		p, err := peermem.Attach(self, self.Record([]uint64{uint64(uintptr(unsafe.Pointer(&src[0])))}))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("bytes=%d/read", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if err := p.ReadAt(dst, p.Addrs[0]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("bytes=%d/copy", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				copy(dst, src)
			}
		})
		p.Close()
		runtime.KeepAlive(src)
	}
}
