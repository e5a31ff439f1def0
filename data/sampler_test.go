package data_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/lrtrain/lrtrain/data"
)

func newSampler(t *testing.T, cfg data.SamplerConfig) *data.Sampler {
	t.Helper()
	s, err := data.NewSampler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rankSteps runs every rank of a world for steps steps and returns, per rank, the steps.
func rankSteps(t *testing.T, cfg data.SamplerConfig, start int64, steps int) [][]data.Step {
	t.Helper()
	out := make([][]data.Step, cfg.WorldSize)
	for rank := range cfg.WorldSize {
		c := cfg
		c.Rank = rank
		s := newSampler(t, c)
		if err := s.SetPosition(start); err != nil {
			t.Fatal(err)
		}
		for range steps {
			out[rank] = append(out[rank], s.Next())
		}
	}
	return out
}

// The ranks' micro-batches of one epoch are disjoint and cover every example exactly once
// (PadLastBatch) or all but the dropped tail (DropLastBatch), for 1, 2 and 3 ranks, with
// and without accumulation.
func TestSamplerCoversEachEpochOnceAcrossRanks(t *testing.T) {
	const n, seed = 37, 9
	for _, world := range []int{1, 2, 3} {
		for _, accum := range []int{1, 3} {
			for _, last := range []data.LastBatch{data.PadLastBatch, data.DropLastBatch} {
				name := fmt.Sprintf("world%d/accum%d/last%d", world, accum, last)
				t.Run(name, func(t *testing.T) {
					cfg := data.SamplerConfig{NumExamples: n, Seed: seed, WorldSize: world, MicroBatch: 2, AccumSteps: accum, LastBatch: last}
					spe := newSampler(t, cfg).StepsPerEpoch()
					g := 2 * accum * world
					perm := data.Permutation(n, seed, 0)
					seen := map[int]int{}
					var stream []int // real examples in global order, rebuilt from the ranks' parts
					steps := rankSteps(t, cfg, 0, spe)
					for step := range spe {
						for j := range accum {
							for rank := range world {
								micro := steps[rank][step].Micro[j]
								if len(micro) != 2 || len(steps[rank][step].Micro) != accum {
									t.Fatalf("rank %d step %d: %d micro-batches of %d", rank, step, len(steps[rank][step].Micro), len(micro))
								}
								for _, slot := range micro {
									if !slot.Padding {
										seen[slot.Index]++
										stream = append(stream, slot.Index)
									}
								}
							}
						}
					}
					want := perm
					if last == data.DropLastBatch {
						want = perm[:spe*g]
					}
					if !equalInts(stream, want) {
						t.Errorf("ranks' parts in order = %v\nwant the epoch's order %v", stream, want)
					}
					for idx, c := range seen {
						if c != 1 {
							t.Errorf("example %d taken %d times", idx, c)
						}
					}
					if steps[0][spe-1].Next != n {
						t.Errorf("epoch ends at position %d, want %d", steps[0][spe-1].Next, n)
					}
				})
			}
		}
	}
}

// Padding slots only fill the last global batch and repeat the epoch's first examples.
func TestSamplerPadsOnlyTheLastBatch(t *testing.T) {
	s := newSampler(t, data.SamplerConfig{NumExamples: 10, Seed: 1, WorldSize: 2, MicroBatch: 2, AccumSteps: 2})
	perm := data.Permutation(10, 1, 0)
	if s.StepsPerEpoch() != 2 {
		t.Fatalf("steps per epoch %d", s.StepsPerEpoch())
	}
	first, second := s.Next(), s.Next()
	for _, slot := range first.Global {
		if slot.Padding {
			t.Error("padding in a full batch")
		}
	}
	want := []data.Slot{{Index: perm[8]}, {Index: perm[9]}, {Index: perm[0], Padding: true}, {Index: perm[1], Padding: true},
		{Index: perm[2], Padding: true}, {Index: perm[3], Padding: true}, {Index: perm[4], Padding: true}, {Index: perm[5], Padding: true}}
	if !reflect.DeepEqual(second.Global, want) || second.Next != 10 || s.Epoch() != 1 {
		t.Errorf("last batch %v, next %d, epoch %d", second.Global, second.Next, s.Epoch())
	}
	if third := s.Next(); third.Epoch != 1 || third.Global[0].Index != data.Permutation(10, 1, 1)[0] {
		t.Errorf("epoch 1 starts with %v", third.Global[0])
	}
}

// The global order is the epoch's permutation whatever the world size, and rank k's
// micro-batch j is slots (j·N + k)·m of the global batch.
func TestSamplerGlobalOrderIndependentOfWorldSize(t *testing.T) {
	const n = 60
	var reference []data.Step
	for _, world := range []int{1, 2, 3} {
		// Global batch 12 for every world size: m·a·N = 12.
		cfg := data.SamplerConfig{NumExamples: n, Seed: 3, WorldSize: world, MicroBatch: 12 / world / 2, AccumSteps: 2}
		if world == 3 {
			cfg.MicroBatch, cfg.AccumSteps = 4, 1
		}
		steps := rankSteps(t, cfg, 0, 12) // two epochs
		for rank := range world {
			for i, st := range steps[rank] {
				if !reflect.DeepEqual(st.Micro, data.RankSlots(st.Global, rank, world, cfg.MicroBatch)) {
					t.Fatalf("world %d rank %d step %d: micro-batches are not the rank's slots", world, rank, i)
				}
			}
		}
		for i, st := range steps[0] {
			wantStart := int64(i) * 12
			if st.Start != wantStart || st.Epoch != i/5 {
				t.Errorf("world %d step %d: start %d epoch %d", world, i, st.Start, st.Epoch)
			}
			perm := data.Permutation(n, 3, st.Epoch)
			for k, slot := range st.Global {
				if slot.Index != perm[(i%5)*12+k] {
					t.Fatalf("world %d step %d slot %d = %d, want the permutation's %d", world, i, k, slot.Index, perm[(i%5)*12+k])
				}
			}
		}
		if reference == nil {
			reference = steps[0]
			continue
		}
		for i := range reference {
			if !reflect.DeepEqual(reference[i].Global, steps[0][i].Global) {
				t.Errorf("world %d step %d: global batch differs from world 1", world, i)
			}
		}
	}
}

// Resuming from the position saved after any step gives exactly the steps of the
// uninterrupted run, on every rank.
func TestSamplerResumeMatchesUninterruptedRun(t *testing.T) {
	for _, last := range []data.LastBatch{data.PadLastBatch, data.DropLastBatch} {
		cfg := data.SamplerConfig{NumExamples: 23, Seed: 17, WorldSize: 2, MicroBatch: 2, AccumSteps: 2, LastBatch: last}
		const total = 20 // several epochs
		full := rankSteps(t, cfg, 0, total)
		for _, stop := range []int{0, 1, 2, 5, 6, 7, 13, 19} {
			for rank := range 2 {
				before := newSampler(t, data.SamplerConfig{NumExamples: 23, Seed: 17, WorldSize: 2, Rank: rank,
					MicroBatch: 2, AccumSteps: 2, LastBatch: last})
				for range stop {
					before.Next()
				}
				cursor := before.Cursor()
				if want := before.PositionAtStep(int64(stop)); cursor.Position != want {
					t.Errorf("last %d: PositionAtStep(%d) = %d, cursor %d", last, stop, want, cursor.Position)
				}
				c := cfg
				c.Rank = rank
				resumed := newSampler(t, c)
				if err := resumed.Resume(cursor); err != nil {
					t.Fatal(err)
				}
				for i := stop; i < total; i++ {
					if got := resumed.Next(); !reflect.DeepEqual(got, full[rank][i]) {
						t.Fatalf("last %d, resumed after step %d, rank %d: step %d = %+v\nwant %+v", last, stop, rank, i, got, full[rank][i])
					}
				}
			}
		}
	}
}

// realStream flattens the real examples of steps in global order.
func realStream(steps []data.Step) []int {
	var out []int
	for _, st := range steps {
		for _, slot := range st.Global {
			if !slot.Padding {
				out = append(out, slot.Index)
			}
		}
	}
	return out
}

// Resuming with another world size continues the same example order: the same global
// batches when m·a·N is unchanged, the same stream of examples otherwise.
func TestSamplerResumeWithDifferentWorldSize(t *testing.T) {
	const n, seed = 50, 4
	orig := data.SamplerConfig{NumExamples: n, Seed: seed, WorldSize: 2, MicroBatch: 2, AccumSteps: 3} // G = 12
	full := rankSteps(t, orig, 0, 15)                                                                  // 5 steps per epoch, 3 epochs
	for _, stop := range []int{1, 3, 5, 7} {
		cursor := full[0][stop-1].Next

		// Same global batch size with 3 ranks: identical global batches.
		same := data.SamplerConfig{NumExamples: n, Seed: seed, WorldSize: 3, MicroBatch: 2, AccumSteps: 2}
		steps := rankSteps(t, same, cursor, 15-stop)
		for i, st := range steps[0] {
			if !reflect.DeepEqual(st.Global, full[0][stop+i].Global) || st.Next != full[0][stop+i].Next {
				t.Fatalf("stop %d: world 3 step %d differs from the uninterrupted world-2 run", stop, stop+i)
			}
		}
		// Union of the 3 ranks' parts is the global batch.
		for i := range steps[0] {
			var union []data.Slot
			for j := range 2 {
				for rank := range 3 {
					union = append(union, steps[rank][i].Micro[j]...)
				}
			}
			if !reflect.DeepEqual(union, steps[0][i].Global) {
				t.Fatalf("stop %d step %d: ranks' parts do not make the global batch", stop, i)
			}
		}

		// Another global batch size (3 ranks × 3 = 9): the same stream of real examples
		// until the end of epoch 2.
		other := data.SamplerConfig{NumExamples: n, Seed: seed, WorldSize: 3, MicroBatch: 3, AccumSteps: 1}
		s := newSampler(t, other)
		if err := s.SetPosition(cursor); err != nil {
			t.Fatal(err)
		}
		var resumed []data.Step
		for s.Epoch() < 3 {
			resumed = append(resumed, s.Next())
		}
		if got, want := realStream(resumed), realStream(full[0][stop:]); !equalInts(got, want) {
			t.Errorf("stop %d: stream after resuming with G=9:\n%v\nwant\n%v", stop, got, want)
		}
	}
}

// With DropLastBatch and a new global batch size, the stream is the same up to the new
// dropped tail, and the next epoch starts where it would have.
func TestSamplerResumeDropLastWithDifferentBatch(t *testing.T) {
	const n = 50
	orig := data.SamplerConfig{NumExamples: n, Seed: 8, WorldSize: 2, MicroBatch: 4, LastBatch: data.DropLastBatch} // G = 8
	full := rankSteps(t, orig, 0, 12)                                                                               // 6 per epoch
	cursor := full[0][2].Next                                                                                       // 24
	resized := newSampler(t, data.SamplerConfig{NumExamples: n, Seed: 8, WorldSize: 3, MicroBatch: 4, LastBatch: data.DropLastBatch})
	if err := resized.SetPosition(cursor); err != nil {
		t.Fatal(err)
	}
	a, b := resized.Next(), resized.Next() // 24..35, 36..47; 48, 49 dropped (G = 12)
	if got, want := realStream([]data.Step{a, b}), realStream(full[0][3:6]); !equalInts(got, want[:24]) {
		t.Errorf("stream %v, want %v", got, want[:24])
	}
	if b.Next != n {
		t.Errorf("after the dropped tail the position is %d, want %d", b.Next, n)
	}
	if c := resized.Next(); c.Global[0] != full[0][6].Global[0] || c.Epoch != 1 {
		t.Errorf("epoch 1 starts with %v, want %v", c.Global[0], full[0][6].Global[0])
	}
	// A position in the dropped tail moves to the next epoch.
	if err := resized.SetPosition(int64(n) + 45); err != nil || resized.Position() != 2*n {
		t.Errorf("position in the tail: %d, %v", resized.Position(), err)
	}
}

func TestSamplerSequentialAndErrors(t *testing.T) {
	s := newSampler(t, data.SamplerConfig{NumExamples: 5, Sequential: true, Seed: 99, WorldSize: 1, MicroBatch: 5})
	for range 2 {
		st := s.Next()
		for i, slot := range st.Global {
			if slot.Index != i {
				t.Fatalf("sequential order %v", st.Global)
			}
		}
	}
	bad := []data.SamplerConfig{
		{NumExamples: 5, WorldSize: 0, MicroBatch: 1},
		{NumExamples: 5, WorldSize: 2, Rank: 2, MicroBatch: 1},
		{NumExamples: 5, WorldSize: 1, MicroBatch: 0},
		{NumExamples: 5, WorldSize: 1, MicroBatch: 1, AccumSteps: -1},
		{NumExamples: 5, WorldSize: 2, MicroBatch: 3, LastBatch: data.DropLastBatch},
		{NumExamples: 5, WorldSize: 1, MicroBatch: 1, LastBatch: 7},
	}
	for i, cfg := range bad {
		if _, err := data.NewSampler(cfg); !errors.Is(err, data.ErrConfig) {
			t.Errorf("config %d: %v", i, err)
		}
	}
	if _, err := data.NewSampler(data.SamplerConfig{WorldSize: 1, MicroBatch: 1}); !errors.Is(err, data.ErrEmpty) {
		t.Errorf("no examples: %v", err)
	}
	s = newSampler(t, data.SamplerConfig{NumExamples: 5, Seed: 1, WorldSize: 1, MicroBatch: 1})
	for _, c := range []data.Cursor{{Position: 3, NumExamples: 6, Seed: 1}, {Position: 3, NumExamples: 5, Seed: 2},
		{Position: 3, NumExamples: 5, Seed: 1, Sequential: true}, {Position: -1, NumExamples: 5, Seed: 1}} {
		if err := s.Resume(c); !errors.Is(err, data.ErrCursor) {
			t.Errorf("cursor %+v: %v", c, err)
		}
	}
}
