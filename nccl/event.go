package nccl

import "fmt"

// CUDA events order work between streams on the device without the host
// waiting: an event recorded on one stream completes when the work enqueued
// there before it has finished, and a stream told to wait for the event
// runs nothing enqueued after the wait until then. This is how a collective
// on a communicator's own stream is ordered after the kernels that produced
// its input on the compute stream, and how the compute stream is ordered
// after the collective (OrderAfter, both ways round), instead of
// synchronising the whole device from the host.

// DefaultStream is the legacy default stream (cudaStream_t 0), on which
// libtorch launches its kernels unless a current stream has been set, as
// this project never does.
const DefaultStream Stream = 0

// Event is a cudaEvent_t, made by EventCreate on the current device.
type Event uintptr

// cudaEventDisableTiming: the events only order work, they never time it,
// which makes recording and waiting cheaper.
const eventDisableTiming = 0x02

// EventCreate is cudaEventCreateWithFlags(cudaEventDisableTiming) on the
// current device. Destroy the event with EventDestroy.
func EventCreate() (Event, error) {
	var e uintptr
	var code int32
	if err := with(func(s *symbols) error {
		e, code = cCudaEventCreate(s.cudaEventCreateWithFlags, eventDisableTiming)
		return nil
	}); err != nil {
		return 0, err
	}
	if err := cudaErr(code); err != nil {
		return 0, fmt.Errorf("nccl: cudaEventCreateWithFlags(disable timing): %w", err)
	}
	return Event(e), nil
}

// EventDestroy is cudaEventDestroy. Work still pending on the event is not
// waited for: CUDA releases the event once it completes.
func EventDestroy(e Event) error {
	return cudaCall("cudaEventDestroy", func(s *symbols) int32 { return cCallPtr(s.cudaEventDestroy, uintptr(e)) })
}

// EventRecord is cudaEventRecord: e completes once the work enqueued on st
// so far has finished. Recording again moves the event to the new point.
func EventRecord(e Event, st Stream) error {
	return cudaCall("cudaEventRecord", func(s *symbols) int32 {
		return cCallPtrPtr(s.cudaEventRecord, uintptr(e), uintptr(st))
	})
}

// EventQuery is cudaEventQuery: true when the work e was recorded after has
// finished (or e was never recorded), false while some is pending
// (cudaErrorNotReady), or an error.
func EventQuery(e Event) (bool, error) {
	var code int32
	if err := with(func(s *symbols) error { code = cCallPtr(s.cudaEventQuery, uintptr(e)); return nil }); err != nil {
		return false, err
	}
	switch CudaError(code) {
	case CudaSuccess:
		return true, nil
	case CudaErrorNotReady:
		return false, nil
	}
	return false, fmt.Errorf("nccl: cudaEventQuery: %w", CudaError(code))
}

// StreamWaitEvent is cudaStreamWaitEvent: work enqueued on st after this
// call waits, on the device, until e completes. The host does not wait.
func StreamWaitEvent(st Stream, e Event) error {
	return cudaCall("cudaStreamWaitEvent", func(s *symbols) int32 {
		return cCallPtrPtrUint(s.cudaStreamWaitEvent, uintptr(st), uintptr(e), 0)
	})
}

// OrderAfter makes the work enqueued on st from now on wait, on the device,
// for the work enqueued on from so far: it records e on from, then makes st
// wait for e. Neither the host nor from waits.
func OrderAfter(st, from Stream, e Event) error {
	if err := EventRecord(e, from); err != nil {
		return fmt.Errorf("nccl: order stream %#x after stream %#x: %w", uintptr(st), uintptr(from), err)
	}
	if err := StreamWaitEvent(st, e); err != nil {
		return fmt.Errorf("nccl: order stream %#x after stream %#x: %w", uintptr(st), uintptr(from), err)
	}
	return nil
}
