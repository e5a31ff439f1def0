package peermem_test

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/lrtrain/lrtrain/dist/peermem"
)

// A process publishes where its data lives; a peer (here the same process, which
// process_vm_readv allows too) attaches to the record and copies the data out.
func Example() {
	data := []byte("frozen weights")
	self, err := peermem.Publish()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer self.Revoke()
	rec := self.Record([]uint64{uint64(uintptr(unsafe.Pointer(&data[0])))})

	peer, err := peermem.Attach(self, rec)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()
	got := make([]byte, len(data))
	if err := peer.ReadAt(got, peer.Addrs[0]); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", got)
	runtime.KeepAlive(data)
	// Output: frozen weights
}
