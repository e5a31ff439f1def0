package launch

import (
	"strings"

	"github.com/lrtrain/lrtrain/dist/worker/workerenv"
)

// WorkerEnv is what the launcher tells one worker through its environment:
// workerenv.Env, whose Vars the launcher writes and whose Read the worker
// (dist/worker) calls. The definition lives there so that a worker reads it
// without importing the launcher.
type WorkerEnv = workerenv.Env

// mergeEnv returns base with vars added; a variable of vars replaces the
// one in base, except OMP_NUM_THREADS, which the user's setting wins.
func mergeEnv(base, vars []string) []string {
	set := map[string]bool{}
	for _, kv := range vars {
		name, _, _ := strings.Cut(kv, "=")
		set[name] = true
	}
	userOMP := false
	out := make([]string, 0, len(base)+len(vars))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if name == workerenv.VarOMPThreads {
			userOMP = true
		} else if set[name] {
			continue
		}
		out = append(out, kv)
	}
	for _, kv := range vars {
		if userOMP && strings.HasPrefix(kv, workerenv.VarOMPThreads+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
