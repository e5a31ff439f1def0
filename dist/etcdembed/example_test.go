package etcdembed_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/lrtrain/lrtrain/dist/etcdembed"
)

// Start an embedded etcd for a single-node job and hand its endpoint to the
// rendezvous.
func Example() {
	dir, err := os.MkdirTemp("", "etcd-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	srv, err := etcdembed.Start(context.Background(), dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	fmt.Println(strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:"))
	// Output: true
}
