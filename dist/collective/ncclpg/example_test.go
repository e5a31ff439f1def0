package ncclpg_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/dist/collective/ncclpg"
)

// A configuration is checked before any library is loaded, so this runs
// without NCCL. On a GPU rank, pass the rendezvous worker as Store and its
// Done() as AbortOn, then use AllReduceRaw on CUDA tensors.
func Example() {
	_, err := ncclpg.New(context.Background(), ncclpg.Config{Rank: 2, Size: 2, Device: 0})
	fmt.Println(errors.Is(err, collective.ErrConfig))
	fmt.Println(err)
	// Output:
	// true
	// collective: invalid configuration: rank 2 out of range for world size 2
}
