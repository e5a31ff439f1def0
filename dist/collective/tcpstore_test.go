package collective_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lrtrain/lrtrain/dist/collective"
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

func TestStoreLookupWaitsForPublish(t *testing.T) {
	_, st := newStore(t)
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
	time.Sleep(50 * time.Millisecond)
	if err := st.Publish(ctx, "k", value); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if !bytes.Equal(v, value) {
			t.Fatalf("got %v, want %v", v, value)
		}
	case <-time.After(2 * time.Second):
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
	time.Sleep(50 * time.Millisecond)
	srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, collective.ErrStore) {
			t.Fatalf("got %v, want ErrStore", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("lookup still waiting after the server closed")
	}
}
