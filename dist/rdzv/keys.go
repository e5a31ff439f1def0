package rdzv

import (
	"fmt"
	"strconv"
	"strings"
)

// Key layout, everything under one prefix per job:
//
//	/lrtrain/<job>/round                              current round number (decimal)
//	/lrtrain/<job>/rounds/<n>/nodes/<agent>           member record (JSON, agent's lease)
//	/lrtrain/<job>/rounds/<n>/frozen                  frozen membership (JSON, no lease)
//	/lrtrain/<job>/rounds/<n>/waiting/<agent>         late joiner (JSON, agent's lease)
//	/lrtrain/<job>/rounds/<n>/kv/<key>                Publish/Lookup values (publisher's lease)
//	/lrtrain/<job>/rounds/<n>/barriers/<group>/<name>/<gen>/<participant>
//
// group is "nodes" for agents and "ranks" for workers; gen counts the uses of
// one barrier name by one participant, so a name can be reused every step.
type keys struct{ jobID, root string }

func newKeys(job string) keys { return keys{jobID: job, root: "/lrtrain/" + job + "/"} }

func (k keys) job() string { return k.jobID }

func (k keys) round() string { return k.root + "round" }

func (k keys) roundDir(n int64) string {
	return k.root + "rounds/" + strconv.FormatInt(n, 10) + "/"
}

func (k keys) nodes(n int64) string             { return k.roundDir(n) + "nodes/" }
func (k keys) node(n int64, id string) string   { return k.nodes(n) + id }
func (k keys) frozen(n int64) string            { return k.roundDir(n) + "frozen" }
func (k keys) waiting(n int64) string           { return k.roundDir(n) + "waiting/" }
func (k keys) waiter(n int64, id string) string { return k.waiting(n) + id }
func (k keys) kv(n int64, key string) string    { return k.roundDir(n) + "kv/" + key }

func (k keys) barrier(n int64, group, name string, gen int) string {
	return fmt.Sprintf("%sbarriers/%s/%s/%d/", k.roundDir(n), group, name, gen)
}

// checkName validates a job id, agent id, key or barrier name: it becomes
// one path segment, so it must be non-empty, short and free of '/' and
// control characters.
func checkName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty %s", ErrConfig, what)
	}
	if len(s) > 200 {
		return fmt.Errorf("%w: %s %.20q... longer than 200 bytes", ErrConfig, what, s)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r == '/' || r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: %s %q contains '/' or a control character", ErrConfig, what, s)
	}
	return nil
}

func formatRound(n int64) string { return strconv.FormatInt(n, 10) }

func parseRound(b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: round number %q", ErrCorrupt, b)
	}
	return n, nil
}
