package nccl

import (
	"fmt"
	"unsafe"
)

// Minimal CUDA runtime wrappers: enough to pick a device, make buffers, a
// stream and events, order streams and wait for collectives. The current
// device is per OS thread in CUDA, so callers lock their goroutine
// (runtime.LockOSThread) before SetDevice and keep device work on that
// goroutine.

// DeviceCount is cudaGetDeviceCount.
func DeviceCount() (int, error) {
	var n int
	var code int32
	if err := with(func(s *symbols) error { n, code = cCallIntOut(s.cudaGetDeviceCount); return nil }); err != nil {
		return 0, err
	}
	if err := cudaErr(code); err != nil {
		return 0, fmt.Errorf("nccl: cudaGetDeviceCount: %w", err)
	}
	return n, nil
}

// SetDevice is cudaSetDevice for the calling OS thread.
func SetDevice(device int) error {
	var code int32
	if err := with(func(s *symbols) error { code = cCudaInt(s.cudaSetDevice, device); return nil }); err != nil {
		return err
	}
	if err := cudaErr(code); err != nil {
		return fmt.Errorf("nccl: cudaSetDevice(%d): %w", device, err)
	}
	return nil
}

// CurrentDevice is cudaGetDevice for the calling OS thread.
func CurrentDevice() (int, error) {
	var d int
	var code int32
	if err := with(func(s *symbols) error { d, code = cCallIntOut(s.cudaGetDevice); return nil }); err != nil {
		return 0, err
	}
	if err := cudaErr(code); err != nil {
		return 0, fmt.Errorf("nccl: cudaGetDevice: %w", err)
	}
	return d, nil
}

// Malloc is cudaMalloc of size bytes on the current device.
func Malloc(size int) (DevicePtr, error) {
	if size < 0 {
		return 0, fmt.Errorf("nccl: cudaMalloc(%d): negative size: %w", size, InvalidArgument)
	}
	var p uintptr
	var code int32
	if err := with(func(s *symbols) error { p, code = cCudaMalloc(s.cudaMalloc, size); return nil }); err != nil {
		return 0, err
	}
	if err := cudaErr(code); err != nil {
		return 0, fmt.Errorf("nccl: cudaMalloc(%d): %w", size, err)
	}
	return DevicePtr(p), nil
}

// Free is cudaFree.
func Free(p DevicePtr) error {
	return cudaCall("cudaFree", func(s *symbols) int32 { return cCallPtr(s.cudaFree, uintptr(p)) })
}

// CopyToDevice copies src into device memory at dst (cudaMemcpy, host to
// device; synchronous).
func CopyToDevice[T Scalar](dst DevicePtr, src []T) error {
	b := asBytes(src)
	if len(b) == 0 {
		return nil
	}
	return cudaCall("cudaMemcpy(HtoD)", func(s *symbols) int32 { return cCudaMemcpyHtoD(s.cudaMemcpy, uintptr(dst), b) })
}

// CopyFromDevice fills dst from device memory at src (cudaMemcpy, device to
// host; synchronous).
func CopyFromDevice[T Scalar](dst []T, src DevicePtr) error {
	b := asBytes(dst)
	if len(b) == 0 {
		return nil
	}
	return cudaCall("cudaMemcpy(DtoH)", func(s *symbols) int32 { return cCudaMemcpyDtoH(s.cudaMemcpy, b, uintptr(src)) })
}

// CopyDeviceToDevice copies n bytes between device buffers.
func CopyDeviceToDevice(dst, src DevicePtr, n int) error {
	return cudaCall("cudaMemcpy(DtoD)", func(s *symbols) int32 {
		return cCudaMemcpyDtoD(s.cudaMemcpy, uintptr(dst), uintptr(src), n)
	})
}

// StreamCreate is cudaStreamCreate on the current device.
func StreamCreate() (Stream, error) {
	var st uintptr
	if err := cudaCall("cudaStreamCreate", func(s *symbols) (code int32) {
		st, code = cCudaStreamCreate(s.cudaStreamCreate)
		return code
	}); err != nil {
		return 0, err
	}
	return Stream(st), nil
}

// StreamDestroy is cudaStreamDestroy.
func StreamDestroy(st Stream) error {
	return cudaCall("cudaStreamDestroy", func(s *symbols) int32 { return cCallPtr(s.cudaStreamDestroy, uintptr(st)) })
}

// StreamSynchronize is cudaStreamSynchronize. It blocks without a bound:
// for collectives prefer WaitStream.
func StreamSynchronize(st Stream) error {
	return cudaCall("cudaStreamSynchronize", func(s *symbols) int32 {
		return cCallPtr(s.cudaStreamSynchronize, uintptr(st))
	})
}

// StreamQuery is cudaStreamQuery: true when all work on st has finished,
// false while some is pending (cudaErrorNotReady), or an error.
func StreamQuery(st Stream) (bool, error) {
	var code int32
	if err := with(func(s *symbols) error { code = cCallPtr(s.cudaStreamQuery, uintptr(st)); return nil }); err != nil {
		return false, err
	}
	switch CudaError(code) {
	case CudaSuccess:
		return true, nil
	case CudaErrorNotReady:
		return false, nil
	}
	return false, fmt.Errorf("nccl: cudaStreamQuery: %w", CudaError(code))
}

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
	if err := cudaCall("cudaEventCreateWithFlags(disable timing)", func(s *symbols) (code int32) {
		e, code = cCudaEventCreate(s.cudaEventCreateWithFlags, eventDisableTiming)
		return code
	}); err != nil {
		return 0, err
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

func cudaCall(name string, call func(s *symbols) int32) error {
	var code int32
	if err := with(func(s *symbols) error { code = call(s); return nil }); err != nil {
		return err
	}
	if err := cudaErr(code); err != nil {
		return fmt.Errorf("nccl: %s: %w", name, err)
	}
	return nil
}

// asBytes views a slice of scalars as its bytes, without copying.
func asBytes[T Scalar](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(zero)))
}
