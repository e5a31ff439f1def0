package workerenv_test

import (
	"fmt"
	"strings"

	"github.com/lrtrain/lrtrain/dist/worker/workerenv"
)

// The launcher writes a worker's environment with Vars; the worker reads it
// back with Read (here from a map instead of os.LookupEnv).
func Example() {
	launched := workerenv.Env{Rank: 1, LocalRank: 1, WorldSize: 2, LocalWorldSize: 2, NumNodes: 1,
		MasterAddr: "127.0.0.1", MasterPort: 29500, Endpoints: []string{"127.0.0.1:2379"}, Job: "demo", Round: 3}
	env := map[string]string{}
	for _, kv := range launched.Vars() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	fmt.Println(workerenv.Launched(lookup))
	w, err := workerenv.Read(lookup)
	fmt.Println(w.Rank, w.WorldSize, w.Job, w.Round, err)

	delete(env, workerenv.VarWorldSize)
	_, err = workerenv.Read(lookup)
	fmt.Println(err)
	// Output:
	// true
	// 1 2 demo 3 <nil>
	// invalid worker environment: WORLD_SIZE="" (was this process started by lrtrain launch?)
}
