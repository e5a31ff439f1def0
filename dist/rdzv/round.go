package rdzv

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Member is one node agent of a round.
type Member struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	Addr     string `json:"addr,omitempty"`
	Nproc    int    `json:"nproc"`
	// Lease is the etcd lease of the agent's session when it joined.
	Lease int64 `json:"lease"`
	// NodeRank is the member's index in the round's sorted member list.
	NodeRank int `json:"node_rank"`
	// RankOffset is the global rank of the member's local rank 0: the sum
	// of Nproc over the members before it.
	RankOffset int `json:"rank_offset"`
}

// Round is a frozen membership as one agent sees it.
//
// Node ranks are assigned by sorting the members by agent ID (byte-wise), so
// every agent computes the same ranks and an agent keeps its rank across
// rounds while the set of IDs before it does not change. Global ranks are
// node-major: rank = RankOffset(node) + local rank, where RankOffset is the
// prefix sum of Nproc, so nodes may run different numbers of workers.
type Round struct {
	Job       string
	Number    int64
	NodeRank  int
	NumNodes  int
	WorldSize int
	// Members are ordered by node rank.
	Members []Member
	// MinNodes and MaxNodes are the bounds the round was formed under.
	MinNodes, MaxNodes int
	// FrozenRevision is the etcd revision at which membership was frozen.
	FrozenRevision int64
}

// Self is this agent's member record.
func (r *Round) Self() Member { return r.Members[r.NodeRank] }

// LocalWorldSize is the number of workers on this node.
func (r *Round) LocalWorldSize() int { return r.Self().Nproc }

// GlobalRank is the global rank of this node's worker localRank.
func (r *Round) GlobalRank(localRank int) int { return r.Self().RankOffset + localRank }

// IDs lists the member agent ids in node-rank order.
func (r *Round) IDs() []string {
	ids := make([]string, len(r.Members))
	for i, m := range r.Members {
		ids[i] = m.ID
	}
	return ids
}

// assignRanks sorts members by ID, fills NodeRank and RankOffset and
// returns the world size.
func assignRanks(members []Member) int {
	sort.Slice(members, func(i, j int) bool { return members[i].ID < members[j].ID })
	world := 0
	for i := range members {
		members[i].NodeRank = i
		members[i].RankOffset = world
		world += members[i].Nproc
	}
	return world
}

// frozenRecord is the value of /rounds/<n>/frozen.
type frozenRecord struct {
	Round     int64    `json:"round"`
	Members   []Member `json:"members"`
	WorldSize int      `json:"world_size"`
	MinNodes  int      `json:"min_nodes"`
	MaxNodes  int      `json:"max_nodes"`
}

func decodeMember(key string, value []byte) (Member, error) {
	var m Member
	if err := json.Unmarshal(value, &m); err != nil || m.ID == "" || m.Nproc < 1 {
		return m, fmt.Errorf("%w: member record %s: %q", ErrCorrupt, key, value)
	}
	return m, nil
}

func decodeFrozen(key string, value []byte) (*frozenRecord, error) {
	var f frozenRecord
	if err := json.Unmarshal(value, &f); err != nil || len(f.Members) == 0 {
		return nil, fmt.Errorf("%w: frozen record %s: %q", ErrCorrupt, key, value)
	}
	return &f, nil
}

// roundFor builds the Round an agent sees from the frozen record, or
// returns false when the agent (with this lease) is not a member.
func roundFor(job string, f *frozenRecord, rev int64, id string, lease int64) (*Round, bool) {
	for i, m := range f.Members {
		if m.ID == id && m.Lease == lease {
			return &Round{
				Job: job, Number: f.Round, NodeRank: i, NumNodes: len(f.Members),
				WorldSize: f.WorldSize, Members: f.Members,
				MinNodes: f.MinNodes, MaxNodes: f.MaxNodes, FrozenRevision: rev,
			}, true
		}
	}
	return nil, false
}
