package nccl_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lrtrain/lrtrain/nccl"
)

// On a machine without NCCL, Init says so and every call reports that the
// library is not loaded. (The override keeps the output the same on a
// machine that has NCCL.)
func Example() {
	old, had := os.LookupEnv(nccl.EnvNCCLLibrary)
	os.Setenv(nccl.EnvNCCLLibrary, "/nonexistent/libnccl.so.2")
	defer func() {
		if had {
			os.Setenv(nccl.EnvNCCLLibrary, old)
		} else {
			os.Unsetenv(nccl.EnvNCCLLibrary)
		}
	}()
	_ = nccl.Shutdown() // start from the unloaded state

	err := nccl.Init()
	fmt.Println("library not found:", errors.Is(err, nccl.ErrLibraryNotFound))
	var le *nccl.LoadError
	if errors.As(err, &le) {
		fmt.Println("tried:", le.Tried[0].Path)
	}
	_, err = nccl.GetVersion()
	fmt.Println(err)
	// Output:
	// library not found: true
	// tried: /nonexistent/libnccl.so.2
	// nccl: library not loaded (call nccl.Init first)
}

// Any Pending can be watched; on a GPU it is comm.Pending(stream). This one
// never finishes, so the watchdog aborts it after its timeout.
func ExampleWatchdog() {
	w := &nccl.Watchdog{Rank: 0, Timeout: 10 * time.Millisecond}
	err := w.Wait(context.Background(), "allreduce", never{})
	var ae *nccl.AbortError
	fmt.Println(errors.As(err, &ae), ae.Op, ae.Rank, errors.Is(err, nccl.ErrTimeout))
	// Output: true allreduce 0 true
}

type never struct{}

func (never) Query() (bool, error) { return false, nil }
func (never) AsyncError() error    { return nil }
func (never) Abort() error         { return nil }

// Run bounds the enqueue too: here the enqueue blocks until the watchdog's
// goroutine aborts the communicator (on a GPU: ncclCommAbort wakes a call
// blocked inside NCCL), and Run returns once it has.
func ExampleWatchdog_Run() {
	p := &blockedUntilAbort{aborted: make(chan struct{})}
	w := &nccl.Watchdog{Rank: 1, Timeout: 10 * time.Millisecond}
	err := w.Run(context.Background(), "allreduce", p, func() error {
		<-p.aborted // the enqueue blocked inside NCCL
		return nccl.RemoteError
	})
	fmt.Println(errors.Is(err, nccl.ErrAborted), errors.Is(err, nccl.ErrTimeout))
	// Output: true true
}

type blockedUntilAbort struct{ aborted chan struct{} }

func (b *blockedUntilAbort) Query() (bool, error) { return false, nil }
func (b *blockedUntilAbort) AsyncError() error    { return nil }
func (b *blockedUntilAbort) Abort() error         { close(b.aborted); return nil }

func ExampleParseDataType() {
	for _, name := range []string{"torch.bfloat16", "float", "half", "long"} {
		d, _ := nccl.ParseDataType(name)
		fmt.Println(name, "->", d, d.Size())
	}
	// Output:
	// torch.bfloat16 -> bfloat16 2
	// float -> float32 4
	// half -> float16 2
	// long -> int64 8
}
