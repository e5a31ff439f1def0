package adapter_test

import (
	"fmt"

	"github.com/lrtrain/lrtrain/adapter"
)

// A spec starts from the paper's defaults; Resolved derives α, Problems names every
// bad key, and the target list applies PEFT's suffix rule.
func Example() {
	s := adapter.Default()
	s.R = 4
	s.Phi.Basis = adapter.BSpline
	s = s.Resolved()
	fmt.Println("alpha:", s.Alpha, "scaling:", s.Scaling())
	c, _ := s.Phi.BasisScale()
	fmt.Printf("bspline scale 1/h: %.4f\n", c)
	fmt.Println("q_proj adapted:", s.TargetModules.Match("model.layers.0.self_attn.q_proj"))
	fmt.Println("lm_head matched:", s.TargetModules.Match("lm_head"))

	s.Phi.K, s.Phi.Grid = 1, "chebychev"
	for _, p := range s.Problems() {
		fmt.Println(p)
	}
	// Output:
	// alpha: 8 scaling: 2
	// bspline scale 1/h: 8.1667
	// q_proj adapted: true
	// lm_head matched: false
	// `adapter.phi.k` is 1; want an integer ≥ 2
	// `adapter.phi.grid` is "chebychev"; want uniform or chebyshev
}
