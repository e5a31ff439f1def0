// Package shard partitions a model's frozen backbone across the ranks of a shard
// group and all-gathers it one block at a time (FSDP-style, for the frozen weights
// only): each rank keeps about 1/S of the frozen weights, gathers a block's weights
// just before the block runs and frees them right after, while the LR-LoRA adapters
// and classification heads stay whole on every rank (data parallel).
//
// # Plan
//
// NewPlan groups the frozen tensors (FrozenTensors lists them for a config; UnitOf
// maps a Hugging Face name to its unit) into the pieces a pass runs one at a time —
// the embeddings, each block, the head — and lays each unit out as one flat buffer:
// tensors back to back in binding order, each aligned to 64 bytes, padded at the end
// to a multiple of S (and of a 4-byte word, since slices travel as float32). Rank r
// holds the r-th of the S equal slices of every unit, as FSDP shards one flat
// parameter. Every rank's share is the same, total/S plus at most S words and the
// alignment gaps per unit; ranks beyond the number of elements hold padding only. The
// plan depends on nothing but the tensor list, S and the element size, so every rank
// computes the same one; Describe prints it (see the example).
//
// # Loading a shard
//
// LoadLocal fills a rank's shards from a memory-mapped checkpoint, reading only the
// byte ranges of its own pieces (tested with mappings in which every other page is
// unreadable), converting F32/BF16/F16/F64 to the compute dtype with libtorch as
// model.Load does. The other ranks' pages are never touched, so loading costs a rank
// 1/S of the checkpoint's I/O and page cache.
//
// # Gathering
//
// A Gatherer is the model's model.BlockHook and model.WeightDeferrer. Load does it
// all: model.Load with the hook, during which the model binds every frozen weight as
// a shape-correct NaN placeholder and reads none of them; then the plan and this
// rank's shards. Before(i) all-gathers unit i through the ProcessGroup directly into
// a libtorch buffer and points the model's own weight tensors at their slices of it
// with libtorch's set_; After(i) points them back at the placeholders and gives the
// buffer up. Each buffer is its unit's size (Plan.BufferLen: or that of a unit at
// most an eighth longer, so that an embedding table and a head of the same shape
// share one size class), allocated when its gather is asked for and freed when no
// longer wanted (libtorch's allocator, or the trainer's caching CPU allocator, hands
// the memory on to the next), so a rank holds its shards plus the units in use or on
// their way: a block's size in the middle of the network, not the largest unit's
// (Qwen2-0.5B's embedding table is 9× a block).
//
// Why set_ rather than binding tensors lazily or copying into preallocated weights:
// the layers and the adapters hold the *ts.Tensor objects they were built with, and
// set_ changes what storage such an object uses without touching any holder — no
// change to how the model binds its layers, no copy besides the all-gather itself
// (lazy binding would need every layer to fetch its weights per call; copying needs
// full-size tensors to copy into, which is the memory sharding is meant to save).
// libtorch bumps a tensor's version on set_, so an autograd graph that still needed
// released weights would fail loudly instead of computing with other values, and a
// weight used outside Before/After is NaN, which shows in the output.
//
// # Prefetch
//
// The Gatherer is also the model's model.BlockScheduler: before each run of pieces
// the model announces the order of its Before calls: embeddings, blocks, head for an
// evaluation Forward; a training pass announces its embeddings and blocks but not its
// head, and in Pass.Backward the blocks below the top one once the top block's
// backward is done. A training step's memory is highest where the forward pass ends
// and backward begins (every block's activations kept; the loss), so the units needed
// there — the head's, the top block's in backward — are gathered when needed, never
// ahead beside it. With a prefetch depth N ≥ 1
// (SetPrefetch; DefaultPrefetch is 1, dist.shard_prefetch in a run's configuration)
// every all-gather runs on a goroutine of the gatherer, one at a time in the order the pass asks for them, and
// Before(i) asks for the units of the next N scheduled pieces as soon as piece i
// starts, each into a buffer allocated on the pass's goroutine, so that they travel
// while piece i computes; only binding the views (set_) happens on the pass's
// goroutine. Memory budget: 1 + N gathered units instead of 1 (one more while a head
// with tied embeddings is held), one alone where a training step peaks. The
// requests depend only on the calls, which are the same on every rank, so the
// collectives are issued in the same order everywhere. A gather that fails on the
// goroutine (a peer gone, a timeout, an abort) is reported by the Before that needs
// it, naming the rank and the unit (model.Forward: "before the block 1: shard: rank
// 0: gather of block 1: collective: peer lost: …"); Before then waits for every
// other gather asked for ahead and drops it, as does Schedule(nil), which the model
// calls when it leaves a run early and at the end of a backward; Close ends the
// goroutine. Depth 0 gathers each unit when it is needed, on the pass's goroutine.
//
// The buffer of the unit released last is kept, with its gathered values, until the
// next Before: a request made until then for that same unit is served from it
// without an all-gather (Stats.Reused); otherwise that Before frees it. A causal LM
// with tied embeddings asks for the embeddings again at the start of the next pass
// right after its head released them. (A training step also asks for the last block
// again after the head; that buffer is freed instead, so that the head's unit is the
// only one gathered at the loss, and the block is gathered again once the head's
// backward is done. That gather, the head's, and the one of the block below the top
// in backward are waited for in full: three per step, for one unit less at each of
// the step's highest points.) Whether a unit is reused depends only on the calls, so
// every rank skips the same all-gathers. LRTRAIN_SHARD_NO_KEEP=1 (EnvNoKeep) turns
// this off, for measurements. On
// a GPU an NCCL group orders each gather by CUDA events instead of synchronising the
// device (collective.StreamOrderedAllGatherer): NCCL's stream starts the gather after
// the kernels queued on libtorch's stream so far (among them the last reads of the
// memory it fills, which the caching allocator may have handed on from an earlier
// unit's buffer), and the kernels queued there later wait for it, so the
// current block's kernels run while the next block is gathered.
//
// # Peer reads
//
// A rank's shards never change after loading, so ranks on one host need not meet to
// gather them: on a CPU, Bind exchanges where every rank's shards live (one
// all-gather of small records, and an agreement) and, where every rank can read
// every other's memory (the same boot and PID namespace; process_vm_readv allowed:
// dist/peermem), a gather copies each peer's shard of the unit straight out of that
// peer's memory, one system call per peer, while the peer computes: no rank waits
// for another, where an all-gather waits for the slowest rank at every unit. The
// rank's memory is the same (the copy lands in the unit's buffer). Each read is
// checked against a token on a page of the peer, which the peer unmaps before it
// frees its shards, and against its pidfd: reading a rank that has exited or given
// its shards up fails (collective.ErrPeerLost, naming the rank) instead of returning
// stale bytes. Close waits until every peer has closed or exited (at most 30 s), as
// a peer may still be reading this rank's shards; Abort does not wait. Any rank that
// cannot read the others, or has LRTRAIN_SHARD_PEER_READS=0 (EnvPeerReads), makes the
// whole group all-gather; ranks on several hosts and GPUs always do. PeerReads
// reports which, and GatherPath says why not.
//
// # Vocabulary rows
//
// The Gatherer is also a model.RowReader. A causal LM's training pass that computes
// its loss in the head (model.SetFusedLoss) reads its vocabulary matrices only by
// rows: the embeddings of the batch's ids, and the head's projection a chunk of rows
// at a time. Where the ranks read each other's shards, StreamRows takes those
// matrices off the gathers for the pass — a unit of them alone (an embedding table)
// is not gathered, a unit that ends with one (a final norm, then lm_head) is gathered
// up to it into a buffer of that length — and ReadRows copies a row range straight
// from the ranks that hold it: this rank's shard, or one process_vm_readv per peer,
// checked as a gather's reads are. The largest gather of a step, at its peak (a tied
// embedding table beside every block's activations), goes. Any other pass
// (evaluation, or a pass with logits) and ranks that all-gather gather the matrices
// whole: over a collective, each row range would be a meeting of the group.
//
// The model calls the hook so that nothing needs a released unit: a Forward with
// grad mode off gathers each piece around its run; for training, activation
// checkpointing (SetCheckpointing, Begin) runs embeddings and blocks without autograd,
// keeps the head's weights until Pass.Backward has gone through it, and gathers each
// block again for its recomputation in backward. Without checkpointing, where every
// linear layer is an LR-LoRA layer recomputing ΔW (model.recompute_delta), the model
// can instead keep each block's graph (model.SetRegather): its nodes hold W0 by
// reference, the norms use copies of their weights, and backward gathers each block
// again before going through its graph — no recomputation, every block's activations
// kept. A Forward that records autograd fails with model.ErrUnsupported.
//
//	pg, _ := gloo.New(ctx, collective.Config{Rank: r, Size: s, Store: store})
//	m, g, err := shard.Load(ctx, pg, dir) // every rank of pg, same dir and options
//	defer g.Close()
//	defer m.Close()
//	m.Inject(targets, cfg, rng)
//	m.SetCheckpointing(true)
//	p, _ := m.Begin(batch) // then p.Backward(loss); p.Close()
//
// Tests run 2 and 3 ranks as real processes in a Gloo group on loopback (llama in
// float32 and bfloat16, Qwen2 with tied embeddings, RoBERTa with its replicated
// classification head; prefetch depths 0, 1 and 2; gathering by peer reads, by
// all-gathers, and by all-gathers because one rank turned peer reads off) and
// demand the unsharded model's evaluation logits and the logits, loss and every
// adapter gradient of a checkpointed training pass bit for bit, the gatherer's
// memory accounting to the byte (replayed from the calls the model makes), no
// collective goroutine left after Close, and, when a rank leaves mid-pass or gives
// its shards up, an error naming the block and the rank.
//
// # Memory
//
// On the small llama preset (128.0 MB of float32 frozen weights; the largest unit is
// the 8192×512 embedding or LM head, 16.8 MB; a block is 11.8 MB), a forward pass of
// 1×128 tokens, each process with one thread on the 2-core VM, prefetch 0 (buffers of
// their unit's size, freed after use; 2026-12-05):
//
//	                        frozen weights held     RSS anon     RSS anon     peak RSS
//	                        (shards + gathered)     after load   after pass   (VmHWM)
//	whole model, 1 process  128.0 MB                185 MB       204 MB       417 MB
//	2 ranks, each           64.0 + 16.8 = 80.8 MB   123 MB       162-173 MB   299 MB
//	3 ranks, each           42.7 + 16.8 = 59.4 MB   102-103 MB   141-153 MB   261-268 MB
//
//	LRT_SHARD_PREFETCH=0 LRTRAIN_SHARD_MEM_PRESET=small go test ./shard/ -run TestShardedMemory -v
//
// (With the pool of largest-unit buffers this replaced: 177-194 and 158-176 MB after
// the pass, 305-312 and 282-291 MB peak. At the default prefetch 1 the ranks hold the
// head's unit and the last block's at once, 28.6 MB: 185-202 and 177-181 MB after the
// pass, 300-317 and 292-297 MB peak.)
//
// The processes share about 58 MB of runtime (libtorch, Gloo, Go) and about 40 MB of
// forward-pass temporaries that malloc keeps; peak RSS also counts the checkpoint
// pages a process mapped while loading, all of them for the whole model and only its
// own for a rank. This test runs without the trainer's caching CPU allocator, so a
// buffer allocated per gather comes from malloc. Binding a gathered unit's views and
// releasing them takes about 0.2 ms
// (copying a 16.8 MB unit into preallocated weights would take 1.7 ms, into a fresh
// allocation 7.9 ms). The all-gather itself costs: on the shared 2-core VM, 15-35 ms
// per unit over loopback (11.8-16.8 MB); the figures above were measured without
// prefetch, which overlaps it with compute and adds one gathered unit.
//
// Shards and gathered buffers live on the model's device, and the all-gather writes
// into the buffer's memory through the group's collective.RawAllGatherer (as bytes):
// Gloo on the CPU, NCCL on a GPU (dist/worker forms an NCCL shard group for a CUDA
// rank). NCCL runs on its own stream and the buffer's memory may still be read by an
// earlier unit's kernels: the gather is ordered after them by events (a group without
// the stream-ordered all-gather gets the device synchronised first).
//
// Limits: a group without a raw all-gather is ErrUnsupported; weights listed by Model.Weights are
// placeholders outside Before/After, so whatever reads them (export, inspection) must
// gather first; a Gatherer serves one model from one goroutine (plus its own
// collective goroutine), and nothing else may use its shard group during a pass.
package shard
