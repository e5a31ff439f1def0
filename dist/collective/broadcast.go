package collective

import (
	"context"
	"unsafe"
)

// Element is a fixed-size element type that BroadcastSlice can move.
type Element interface {
	~int8 | ~uint8 | ~int16 | ~uint16 | ~int32 | ~uint32 | ~int64 | ~uint64 | ~float32 | ~float64
}

// BroadcastSlice copies root's buf into every other rank's buf through g's byte
// Broadcast: the values arrive bit for bit (negative zeros and NaN payloads included),
// whatever their type. Every rank passes a slice of the same length and type.
func BroadcastSlice[T Element](ctx context.Context, g ProcessGroup, buf []T, root int) error {
	return g.Broadcast(ctx, Bytes(buf), root)
}

// Bytes is buf's memory as bytes (nil for an empty slice); it aliases buf.
func Bytes[T Element](buf []T) []byte {
	if len(buf) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*int(unsafe.Sizeof(zero)))
}
