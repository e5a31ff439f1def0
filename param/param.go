package param

import (
	"fmt"

	"github.com/sugarme/gotch/ts"
)

// Tensor is one tensor under its stable name (a Hugging Face weight name or a
// checkpoint name such as <module>.lora_A) and whether the optimizer trains it
// (false for frozen weights and for buffers such as the φ grid).
type Tensor struct {
	Name      string
	Tensor    *ts.Tensor
	Trainable bool
}

// Trainable keeps the trainable entries of list, in order, in the form the optimizer
// takes.
func Trainable(list []Tensor) []ts.NamedTensor {
	var out []ts.NamedTensor
	for _, nt := range list {
		if nt.Trainable {
			out = append(out, ts.NamedTensor{Name: nt.Name, Tensor: nt.Tensor})
		}
	}
	return out
}

// Count sums the element counts of the trainable entries of list.
func Count(list []Tensor) (int64, error) {
	var n int64
	for _, nt := range list {
		if !nt.Trainable {
			continue
		}
		shape, err := nt.Tensor.Size()
		if err != nil {
			return 0, fmt.Errorf("param: count %s: %w", nt.Name, err)
		}
		k := int64(1)
		for _, d := range shape {
			k *= d
		}
		n += k
	}
	return n, nil
}
