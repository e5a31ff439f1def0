package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/lrtrain/lrtrain/nccl"
)

// Values are handled as float64 on the host and encoded into each NCCL
// data type's bytes; the half types have no Go type.

// rankInputs are rank r's n inputs for op: small integers and halves,
// shifted by the rank, so that sums over up to 8 ranks stay exact in every
// type checked (bfloat16 has 8 mantissa bits); for Prod they are 1s and 2s,
// so that products stay exact too.
func rankInputs(dt nccl.DataType, op nccl.RedOp, r, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		switch {
		case op == nccl.Prod:
			v[i] = float64(1 + (i+r)%2)
		case isFloat(dt):
			v[i] = float64(i%5)*1.5 - 3 + float64(r)
		case dt == nccl.Uint8 || dt == nccl.Uint32 || dt == nccl.Uint64:
			v[i] = float64(i%5)*3 + float64(r)
		default:
			v[i] = float64(i%5)*3 - 6 + float64(r)
		}
	}
	return v
}

// reduced is the expected result of op over nranks ranks' inputs, elements
// off to off+n of each.
func reduced(dt nccl.DataType, op nccl.RedOp, nranks, n, off int) []float64 {
	out := make([]float64, n)
	for r := range nranks {
		in := rankInputs(dt, op, r, off+n)[off:]
		for i, x := range in {
			switch {
			case r == 0:
				out[i] = x
			case op == nccl.Prod:
				out[i] *= x
			case op == nccl.Max:
				out[i] = max(out[i], x)
			case op == nccl.Min:
				out[i] = min(out[i], x)
			default:
				out[i] += x
			}
		}
	}
	if op == nccl.Avg {
		for i := range out {
			out[i] /= float64(nranks)
		}
	}
	return out
}

func filled(n int, x float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = x
	}
	return v
}

func isFloat(dt nccl.DataType) bool {
	return dt == nccl.Float16 || dt == nccl.Float32 || dt == nccl.Float64 || dt == nccl.BFloat16
}

func format(v []float64) string {
	if len(v) > 10 {
		v = v[:10]
	}
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

var le = binary.LittleEndian

func encode(dt nccl.DataType, v []float64) []byte {
	size := dt.Size()
	b := make([]byte, len(v)*size)
	for i, x := range v {
		p := b[i*size:]
		switch dt {
		case nccl.Float32:
			le.PutUint32(p, math.Float32bits(float32(x)))
		case nccl.Float64:
			le.PutUint64(p, math.Float64bits(x))
		case nccl.BFloat16:
			le.PutUint16(p, uint16(math.Float32bits(float32(x))>>16))
		case nccl.Float16:
			le.PutUint16(p, halfBits(float32(x)))
		case nccl.Int8, nccl.Uint8:
			p[0] = byte(int64(x))
		case nccl.Int32, nccl.Uint32:
			le.PutUint32(p, uint32(int64(x)))
		case nccl.Int64, nccl.Uint64:
			le.PutUint64(p, uint64(int64(x)))
		}
	}
	return b
}

func decode(dt nccl.DataType, b []byte) []float64 {
	size := dt.Size()
	v := make([]float64, len(b)/size)
	for i := range v {
		p := b[i*size:]
		switch dt {
		case nccl.Float32:
			v[i] = float64(math.Float32frombits(le.Uint32(p)))
		case nccl.Float64:
			v[i] = math.Float64frombits(le.Uint64(p))
		case nccl.BFloat16:
			v[i] = float64(math.Float32frombits(uint32(le.Uint16(p)) << 16))
		case nccl.Float16:
			v[i] = float64(halfValue(le.Uint16(p)))
		case nccl.Int8:
			v[i] = float64(int8(p[0]))
		case nccl.Uint8:
			v[i] = float64(p[0])
		case nccl.Int32:
			v[i] = float64(int32(le.Uint32(p)))
		case nccl.Uint32:
			v[i] = float64(le.Uint32(p))
		case nccl.Int64:
			v[i] = float64(int64(le.Uint64(p)))
		case nccl.Uint64:
			v[i] = float64(le.Uint64(p))
		}
	}
	return v
}

// halfBits converts a float32 that half precision represents exactly
// (normal numbers and zero; the inputs above) to IEEE 754 binary16 bits.
func halfBits(f float32) uint16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	if bits&0x7fffffff == 0 {
		return sign
	}
	exp := int((bits>>23)&0xff) - 127 + 15
	return sign | uint16(exp)<<10 | uint16((bits>>13)&0x3ff)
}

func halfValue(h uint16) float32 {
	sign := float32(1)
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float32(h & 0x3ff)
	if exp == 0 {
		return sign * mant / 1024 * float32(math.Pow(2, -14))
	}
	return sign * (1 + mant/1024) * float32(math.Pow(2, float64(exp-15)))
}
