package nccl

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// The event calls go through the real dlsym and trampolines to the fake
// libcudart, which logs each one with the handles it received: the order of
// the lines is the order of the calls.

func TestEventCallsBeforeInitReturnErrNotLoaded(t *testing.T) {
	requireUnloaded(t)
	calls := map[string]func() error{
		"EventCreate":     func() error { _, err := EventCreate(); return err },
		"EventDestroy":    func() error { return EventDestroy(1) },
		"EventRecord":     func() error { return EventRecord(1, 0) },
		"EventQuery":      func() error { _, err := EventQuery(1); return err },
		"StreamWaitEvent": func() error { return StreamWaitEvent(0, 1) },
		"OrderAfter":      func() error { return OrderAfter(1, 0, 1) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrNotLoaded) {
			t.Errorf("%s before Init: err = %v, want ErrNotLoaded", name, err)
		}
	}
}

// OrderAfter records the event on the stream that must go first, then makes
// the other stream wait for it: in that order, with the handles passed
// through unchanged, and with timing disabled on the event.
func TestFakeOrderAfterRecordsThenWaits(t *testing.T) {
	logPath := loadFakes(t)
	s, err := StreamCreate()
	if err != nil {
		t.Fatal(err)
	}
	defer StreamDestroy(s)
	e, err := EventCreate()
	if err != nil {
		t.Fatal(err)
	}
	if err := OrderAfter(s, DefaultStream, e); err != nil {
		t.Fatalf("OrderAfter(nccl stream, default stream): %v", err)
	}
	if err := OrderAfter(DefaultStream, s, e); err != nil {
		t.Fatalf("OrderAfter(default stream, nccl stream): %v", err)
	}
	if err := EventDestroy(e); err != nil {
		t.Fatal(err)
	}
	want := []string{
		fmt.Sprintf("cudaEventCreateWithFlags event=%#x flags=2", uintptr(e)),
		fmt.Sprintf("cudaEventRecord event=%#x stream=0x0", uintptr(e)),
		fmt.Sprintf("cudaStreamWaitEvent stream=%#x event=%#x recorded=1", uintptr(s), uintptr(e)),
		fmt.Sprintf("cudaEventRecord event=%#x stream=%#x", uintptr(e), uintptr(s)),
		fmt.Sprintf("cudaStreamWaitEvent stream=0x0 event=%#x recorded=2", uintptr(e)),
		fmt.Sprintf("cudaEventDestroy event=%#x", uintptr(e)),
	}
	if got := strings.Split(strings.TrimSpace(readLog(t, logPath)), "\n"); !slices.Equal(got, want) {
		t.Errorf("calls =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// EventQuery maps cudaErrorNotReady to false: the fake answers "not ready"
// twice after a record (FAKE_CUDA_NOT_READY's default), then done; an event
// never recorded is done at once.
func TestFakeEventQuery(t *testing.T) {
	loadFakes(t)
	e, err := EventCreate()
	if err != nil {
		t.Fatal(err)
	}
	defer EventDestroy(e)
	if done, err := EventQuery(e); !done || err != nil {
		t.Errorf("unrecorded event: done %v, err %v; want done", done, err)
	}
	if err := EventRecord(e, DefaultStream); err != nil {
		t.Fatal(err)
	}
	var got []bool
	for range 3 {
		done, err := EventQuery(e)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, done)
	}
	if fmt.Sprint(got) != "[false false true]" {
		t.Errorf("queries after a record = %v, want [false false true]", got)
	}
}

// A failing call returns a CudaError wrapped with the call's name; the
// fake refuses a destroyed event as CUDA refuses an invalid handle.
func TestFakeEventErrorsNameTheCall(t *testing.T) {
	loadFakes(t)
	e, err := EventCreate()
	if err != nil {
		t.Fatal(err)
	}
	if err := EventDestroy(e); err != nil {
		t.Fatal(err)
	}
	const invalidHandle = CudaError(400)
	checks := map[string]error{
		"cudaEventRecord":     EventRecord(e, DefaultStream),
		"cudaStreamWaitEvent": StreamWaitEvent(DefaultStream, e),
		"cudaEventDestroy":    EventDestroy(e),
	}
	for name, err := range checks {
		if !errors.Is(err, invalidHandle) || !strings.Contains(err.Error(), "nccl: "+name+": cuda: fake cuda: invalid resource handle") {
			t.Errorf("%s on a destroyed event: %v", name, err)
		}
	}
	if _, err := EventQuery(e); !errors.Is(err, invalidHandle) {
		t.Errorf("EventQuery on a destroyed event: %v", err)
	}
	if err := OrderAfter(DefaultStream, 0, e); !errors.Is(err, invalidHandle) || !strings.Contains(err.Error(), "order stream") {
		t.Errorf("OrderAfter with a destroyed event: %v", err)
	}
}
