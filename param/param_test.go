package param

import (
	"slices"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Trainable and Count look at the trainable entries only, in list order.
func TestTrainableAndCount(t *testing.T) {
	mk := func(shape ...int64) *ts.Tensor {
		x, err := ts.Zeros(shape, gotch.Float, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.Drop() })
		return x
	}
	list := []Tensor{
		{"w.lora_A", mk(2, 5), true}, // 10
		{"w.phi.grid", mk(7), false}, // a buffer
		{"w.lora_B", mk(3, 2), true}, // 6
		{"frozen.weight", mk(4, 4), false},
		{"classifier.bias", mk(3), true}, // 3
	}
	var names []string
	for _, nt := range Trainable(list) {
		names = append(names, nt.Name)
	}
	if want := []string{"w.lora_A", "w.lora_B", "classifier.bias"}; !slices.Equal(names, want) {
		t.Errorf("Trainable: %v, want %v", names, want)
	}
	if n, err := Count(list); err != nil || n != 19 {
		t.Errorf("Count = %d, %v; want 19", n, err)
	}
	if n, err := Count(nil); err != nil || n != 0 {
		t.Errorf("Count(nil) = %d, %v", n, err)
	}
}
