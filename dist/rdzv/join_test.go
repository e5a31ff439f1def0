package rdzv

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAgentsMeetWithDeterministicRanks(t *testing.T) {
	srv := startEtcd(t)
	// Created in an order that differs from the id order; nproc differs per
	// node so the prefix sums matter.
	ids := []string{"node-c", "node-a", "node-b"}
	nprocs := map[string]int{"node-a": 2, "node-b": 1, "node-c": 3}
	for n := 1; n <= 3; n++ {
		t.Run(fmt.Sprintf("%d agents", n), func(t *testing.T) {
			job := fmt.Sprintf("meet%d", n)
			agents := make([]*Agent, n)
			for i := range agents {
				id := ids[i]
				agents[i] = newAgent(t, srv, job, id, WithNodes(n, n), WithNproc(nprocs[id]),
					WithAddress("10.0.0.1:29500"))
			}
			rounds := joinAll(t, agents...)

			sorted := slices.Clone(ids[:n])
			slices.Sort(sorted)
			wantWorld := 0
			for _, id := range sorted {
				wantWorld += nprocs[id]
			}
			var global []int
			for i, r := range rounds {
				id := agents[i].ID()
				if r.Number != 0 || r.NumNodes != n || r.WorldSize != wantWorld {
					t.Fatalf("%s: round %d, %d nodes, world %d; want 0, %d, %d",
						id, r.Number, r.NumNodes, r.WorldSize, n, wantWorld)
				}
				if want := slices.Index(sorted, id); r.NodeRank != want {
					t.Fatalf("%s: node rank %d, want %d (sorted ids %v)", id, r.NodeRank, want, sorted)
				}
				if !slices.Equal(r.IDs(), sorted) {
					t.Fatalf("%s: members %v, want %v", id, r.IDs(), sorted)
				}
				self := r.Self()
				if self.ID != id || self.Hostname != "host-"+id || self.Nproc != nprocs[id] || self.Addr != "10.0.0.1:29500" {
					t.Fatalf("%s: self record %+v", id, self)
				}
				for local := 0; local < r.LocalWorldSize(); local++ {
					global = append(global, r.GlobalRank(local))
				}
			}
			// Global ranks cover 0..world-1 exactly once.
			slices.Sort(global)
			for i, g := range global {
				if g != i {
					t.Fatalf("global ranks %v, want 0..%d", global, wantWorld-1)
				}
			}
			if len(global) != wantWorld {
				t.Fatalf("%d global ranks, want %d", len(global), wantWorld)
			}
		})
	}
}

func TestRejoinKeepsRanksInNextRound(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "rejoin", "b-node", WithNodes(2, 2))
	b := newAgent(t, srv, "rejoin", "a-node", WithNodes(2, 2))
	first := joinAll(t, a, b)
	second := joinAll(t, a, b)
	for i := range first {
		if second[i].Number != first[i].Number+1 {
			t.Fatalf("rejoin: round %d after %d, want the next one", second[i].Number, first[i].Number)
		}
		if second[i].NodeRank != first[i].NodeRank {
			t.Fatalf("rejoin: node rank %d, was %d", second[i].NodeRank, first[i].NodeRank)
		}
	}
	if first[0].NodeRank != 1 || first[1].NodeRank != 0 {
		t.Fatalf("node ranks %d, %d; want ids sorted: a-node 0, b-node 1", first[0].NodeRank, first[1].NodeRank)
	}
}

func TestMinNodesFreezeAfterLastCall(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "elastic", "a", WithNodes(2, 3))
	b := newAgent(t, srv, "elastic", "b", WithNodes(2, 3))
	t0 := time.Now()
	rounds := joinAll(t, a, b)
	took := time.Since(t0)
	t.Logf("2 of min 2, max 3 froze after %v (last call %v)", took, testLastCall)
	if rounds[0].NumNodes != 2 || rounds[1].NumNodes != 2 {
		t.Fatalf("nodes %d, %d; want 2", rounds[0].NumNodes, rounds[1].NumNodes)
	}
	if took < testLastCall {
		t.Fatalf("froze after %v, before the %v last call", took, testLastCall)
	}
	if took > testLastCall+5*time.Second {
		t.Fatalf("froze after %v, long after the %v last call", took, testLastCall)
	}
	if rounds[0].MinNodes != 2 || rounds[0].MaxNodes != 3 {
		t.Fatalf("bounds %d:%d, want 2:3", rounds[0].MinNodes, rounds[0].MaxNodes)
	}
}

func TestMaxNodesFreezeAtOnce(t *testing.T) {
	srv := startEtcd(t)
	// A last call far longer than the test proves the freeze came from max.
	const lastCall = 20 * time.Second
	var agents []*Agent
	for _, id := range []string{"a", "b", "c"} {
		agents = append(agents, newAgent(t, srv, "full", id, WithNodes(2, 3), WithLastCall(lastCall)))
	}
	t0 := time.Now()
	rounds := joinAll(t, agents...)
	took := time.Since(t0)
	t.Logf("3 of max 3 froze after %v", took)
	if took > 5*time.Second {
		t.Fatalf("3 of max 3 froze after %v", took)
	}
	for _, r := range rounds {
		if r.NumNodes != 3 {
			t.Fatalf("nodes %d, want 3", r.NumNodes)
		}
	}
}

func TestJoinTimesOutNamingWhoJoined(t *testing.T) {
	srv := startEtcd(t)
	a := newAgent(t, srv, "lonely", "only-one", WithNodes(2, 2), WithJoinTimeout(500*time.Millisecond))
	t0 := time.Now()
	_, err := a.Join(context.Background())
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if took := time.Since(t0); took > 3*time.Second {
		t.Fatalf("join timeout of 500ms returned after %v", took)
	}
	for _, want := range []string{"round 0", "lonely", "1 joined, min 2", "only-one"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not mention %q", err, want)
		}
	}
}

func TestWaiterEndsRoundWhoseMembersDied(t *testing.T) {
	srv := startEtcd(t)
	old := newAgent(t, srv, "revive", "old", WithNodes(1, 1))
	joinAll(t, old)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	// Round 0 stays frozen with a dead member; a new agent must not wait
	// for it forever.
	fresh := newAgent(t, srv, "revive", "fresh", WithNodes(1, 1))
	r := joinAll(t, fresh)[0]
	if r.Number != 1 || r.NumNodes != 1 || r.Self().ID != "fresh" {
		t.Fatalf("round %d with %v, want round 1 with [fresh]", r.Number, r.IDs())
	}
}

func TestRoundNeverExceedsMaxNodes(t *testing.T) {
	srv := startEtcd(t)
	var agents []*Agent
	for _, id := range []string{"a", "b", "c"} {
		agents = append(agents, newAgent(t, srv, "over", id, WithNodes(1, 2),
			WithJoinTimeout(2*time.Second)))
	}
	rounds, errs := joinEach(agents...)
	// Whether the third registered before the freeze or after, exactly two
	// are in round 0 and the third times out waiting for a round with room.
	in, spare := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			in++
			if rounds[i].NumNodes != 2 || rounds[i].Number != 0 {
				t.Fatalf("%s: round %d with %v, want 2 nodes in round 0", agents[i].ID(), rounds[i].Number, rounds[i].IDs())
			}
		case errors.Is(err, ErrTimeout):
			spare++
		default:
			t.Fatalf("%s: %v", agents[i].ID(), err)
		}
	}
	if in != 2 || spare != 1 {
		t.Fatalf("%d joined, %d spare; want 2 and 1", in, spare)
	}
}
