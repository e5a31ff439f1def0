package collective_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
	"github.com/lrtrain/lrtrain/internal/testkit"
)

func newStore(t *testing.T) (*collective.StoreServer, *collective.TCPStore) {
	t.Helper()
	srv, err := collective.ServeStore("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	st, err := collective.DialStore(context.Background(), srv.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return srv, st
}

// serverWaiting returns a condition: a goroutine of srv (which runs in this process)
// is blocked in a lookup of a key not yet published. The traceback names srv by the
// receiver's address.
func serverWaiting(srv *collective.StoreServer) func() bool {
	frame := []byte(fmt.Sprintf("collective.(*StoreServer).wait(%p,", srv))
	return func() bool {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		for _, g := range bytes.Split(buf[:n], []byte("\n\n")) {
			if bytes.Contains(g, []byte(" [select")) && bytes.Contains(g, frame) {
				return true
			}
		}
		return false
	}
}

func TestStoreLookupWaitsForPublish(t *testing.T) {
	srv, st := newStore(t)
	ctx := context.Background()
	value := []byte{0, 1, 2, 255, '\n'} // addresses are binary
	got := make(chan []byte, 1)
	go func() {
		v, err := st.Lookup(ctx, "k")
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	testkit.WaitFor(t, 10*time.Second, "the lookup to wait on the server", serverWaiting(srv))
	if err := st.Publish(ctx, "k", value); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if !bytes.Equal(v, value) {
			t.Fatalf("got %v, want %v", v, value)
		}
	case <-time.After(10 * time.Second): // a failure bound: the call would otherwise never return
		t.Fatal("lookup did not return after publish")
	}
	// A published key is answered at once; publishing again replaces it.
	if err := st.Publish(ctx, "k", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if v, err := st.Lookup(ctx, "k"); err != nil || string(v) != "new" {
		t.Fatalf("got %q, %v", v, err)
	}
}

func TestStoreLookupHonoursContext(t *testing.T) {
	_, st := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := st.Lookup(ctx, "never")
	if !errors.Is(err, collective.ErrStore) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrStore and DeadlineExceeded", err)
	}
}

func TestStoreCloseFailsWaitingLookups(t *testing.T) {
	srv, st := newStore(t)
	done := make(chan error, 1)
	go func() {
		_, err := st.Lookup(context.Background(), "never")
		done <- err
	}()
	testkit.WaitFor(t, 10*time.Second, "the lookup to wait on the server", serverWaiting(srv))
	srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, collective.ErrStore) {
			t.Fatalf("got %v, want ErrStore", err)
		}
	case <-time.After(10 * time.Second): // a failure bound: the call would otherwise never return
		t.Fatal("lookup still waiting after the server closed")
	}
}
