package shard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch/ts"

	"github.com/lrtrain/lrtrain/internal/testkit/childproc"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/shard"
)

// rowsWorkload is what a sharded model that reads its vocabulary matrices by rows
// and the whole model must agree on, bit for bit: the loss and every adapter
// gradient of a checkpointed training pass that computes its loss in the head (a
// chunk of 100 vocabulary rows at a time: chunks that straddle two ranks' shards),
// the logits of an evaluation Forward after it (which needs the matrices whole),
// then the loss and gradients of a second such training pass. atLoss, if not nil,
// is called in each training pass between Begin and Backward.
func rowsWorkload(m *model.Model, atLoss func()) ([]float32, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const batch, seq = 2, 6
	vocab := int64(m.Config().VocabSize)
	ids, labels := make([]int64, batch*seq), make([]int64, batch*seq)
	for i := range ids {
		ids[i] = int64(i*7919+13) % vocab
		labels[i] = ids[i]
	}
	labels[3], labels[seq+1] = model.IgnoreIndex, model.IgnoreIndex
	in, err := model.Int64Tensor(ids, batch, seq)
	if err != nil {
		return nil, err
	}
	defer in.Drop()
	lab, err := model.Int64Tensor(labels, batch, seq)
	if err != nil {
		return nil, err
	}
	defer lab.Drop()
	if _, err := injectLoRA(m); err != nil {
		return nil, err
	}
	m.SetCheckpointing(true)
	m.SetFusedLoss(true, 100)
	var out []float32
	train := func() error {
		m.Train(true)
		if _, err := ts.GradSetEnabled(true); err != nil {
			return err
		}
		p, err := m.Begin(model.Inputs{InputIDs: in, Labels: lab})
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer p.Close()
		if atLoss != nil {
			atLoss()
		}
		if p.LossSum() == nil {
			return fmt.Errorf("the pass computed no loss in its head")
		}
		if err := p.Backward(p.LossSum()); err != nil {
			return fmt.Errorf("backward: %w", err)
		}
		if out, err = appendValues(out, p.LossSum()); err != nil {
			return err
		}
		for _, nt := range m.TrainableTensors() {
			if !nt.Trainable {
				continue
			}
			g, err := nt.Tensor.Grad(false)
			if err != nil {
				return fmt.Errorf("grad of %s: %w", nt.Name, err)
			}
			out, err = appendValues(out, g)
			g.Drop()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := train(); err != nil {
		return nil, err
	}
	m.Train(false)
	if out, err = appendEvalLogits(out, m, in); err != nil {
		return nil, err
	}
	if err := train(); err != nil {
		return nil, err
	}
	return out, nil
}

// A causal LM's training pass that computes its loss in the head needs its
// vocabulary matrices only by rows: sharded ranks that read each other's shards then
// read the rows of the batch's ids for the embeddings and the head's rows a chunk at
// a time (Gatherer.StreamRows, ReadRows) instead of gathering the matrices — Qwen2's
// tied table, Llama's embedding table and its lm_head (gathered up to it: the
// final norm before it) — and must still compute what the whole model does, bit for
// bit, with an evaluation Forward between two training passes gathering them whole.
// Ranks that all-gather gather them whole; what each rank holds gathered at the loss
// shows which.
func TestVocabularyReadByRowsMatchesTheWholeModel(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process; runs without -short")
	}
	for _, c := range []struct {
		arch   string
		noPeer string
	}{{"llama", ""}, {"qwen2", ""}, {"llama", "all"}, {"qwen2", "all"}} {
		t.Run(fmt.Sprintf("%s/no-peer-reads=%s", c.arch, or(c.noPeer, "none")), func(t *testing.T) {
			dir := writeModel(t, c.arch, "tiny", "")
			cfg, err := model.ReadConfig(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tied := c.arch == "qwen2"; cfg.TieWordEmbeddings != tied {
				t.Fatalf("the tiny %s has tie_word_embeddings %v; the test wants %v", c.arch, cfg.TieWordEmbeddings, tied)
			}
			want := rowsWholeInChild(t, dir)
			vocabBytes := int64(cfg.VocabSize * cfg.HiddenSize * 4)
			out := t.TempDir()
			for _, r := range runRanks(t, "rows", 2, 60*time.Second, envDir+"="+dir, envOut+"="+out, envNoPeer+"="+c.noPeer) {
				checkRankOutput(t, r, out, want)
				var reads, atLoss int64
				if _, err := fmt.Sscanf(strings.TrimSpace(r.stdout), "row reads %d, buffers at the loss %d", &reads, &atLoss); err != nil {
					t.Fatalf("rank %d printed %q: %v", r.rank, r.stdout, err)
				}
				if peer := c.noPeer == ""; peer != (reads > 0) {
					t.Errorf("rank %d: %d row reads with peer reads %v", r.rank, reads, peer)
				}
				if peer := c.noPeer == ""; peer != (atLoss < vocabBytes) {
					t.Errorf("rank %d: %d bytes gathered at the loss with peer reads %v; the vocabulary matrix is %d", r.rank, atLoss, peer, vocabBytes)
				}
			}
		})
	}
}

// rowsWholeInChild runs rowsWorkload on the model in dir loaded whole, in a child
// with childEnv, and returns its result.
func rowsWholeInChild(t *testing.T, dir string) []float32 {
	t.Helper()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := childproc.Command(ctx, "rows-whole", childEnv(envDir+"="+dir, envOut+"="+out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("whole-model reference: %v\n%s", err, b)
	}
	v, err := readFloats(filepath.Join(out, "whole.bin"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// rowsWholeChild is the role rows-whole: rowsWorkload on the whole model.
func rowsWholeChild() int {
	m, err := model.Load(os.Getenv(envDir))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer m.Close()
	v, err := rowsWorkload(m, nil)
	if err == nil {
		err = writeFloats(filepath.Join(os.Getenv(envOut), "whole.bin"), v)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// rowsChild is the role rows on a sharded rank: rowsWorkload, then its results and
// "row reads N, buffers at the loss B" (the most gathered bytes held at a loss).
func rowsChild(m *model.Model, gat *shard.Gatherer, rank int) int {
	var atLoss int64
	v, err := rowsWorkload(m, func() { atLoss = max(atLoss, gat.Stats().BufferBytes) })
	if err == nil {
		err = writeFloats(filepath.Join(os.Getenv(envOut), strconv.Itoa(rank)+".bin"), v)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: %v\n", rank, err)
		return 1
	}
	fmt.Printf("row reads %d, buffers at the loss %d\n", gat.Stats().RowReads, atLoss)
	return 0
}
