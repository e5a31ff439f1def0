package config_test

import (
	"fmt"

	"github.com/lrtrain/lrtrain/config"
)

func Example() {
	bad := []byte("train:\n  max_steps: 100\n  learning_rat: 1e-4\n")
	_, err := config.Decode(bad, "cfg.yaml", nil)
	fmt.Println(err)

	good := []byte("adapter:\n  r: 4\ntrain:\n  max_steps: 100\n")
	c, err := config.Decode(good, "cfg.yaml", []string{"train.lr=1e-4", "adapter.target_modules=[q_proj, v_proj]"})
	if err != nil {
		panic(err)
	}
	fmt.Println("alpha:", c.Adapter.Alpha, "scaling:", c.Adapter.Scaling())
	fmt.Println("targets:", c.Adapter.TargetModules, "phi K:", c.Adapter.Phi.K)
	fmt.Println("lr:", c.Train.LR, "set at", c.Where("train.lr"))
	fmt.Println("max_steps:", c.Train.MaxSteps, "set at", c.Where("train.max_steps"))
	// Output:
	// config: unknown key `learning_rat` in section train at cfg.yaml:3; did you mean `lr`?
	// alpha: 8 scaling: 2
	// targets: q_proj,v_proj phi K: 50
	// lr: 0.0001 set at --set train.lr=1e-4
	// max_steps: 100 set at cfg.yaml:4
}
