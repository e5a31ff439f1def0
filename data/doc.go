// Package data turns dataset files into the batches the trainer consumes: readers,
// prompt templates, tokenisation with prompt masking, truncation, packing, padding and a
// deterministic, resumable distributed sampler. It is plain Go and uses a tokenizer only
// through the small Tokenizer interface.
//
// Reading (Read, ReadConfig): the format is always named by configuration (Formats lists
// them): alpaca JSON or JSONL (instruction, input, output), the commonsense-170k layout
// (the same plus answer), classification JSONL (text or sentence, or sentence1 and
// sentence2, with a label that is an integer class, a float score for regression, or a
// string mapped through a label list) and plain text (one document per file or per line).
// A bad record fails with a *RecordError, "data: FILE:LINE: reason", or is skipped and
// counted when SkipBadRecords is set; a dataset with no record fails with ErrEmpty.
//
// Building (Builder): instruction records become BOS + prompt + response + EOS with the
// prompt tokenised apart from the response and its labels set to IgnoreIndex (-100), so only
// the response is learned. Labels are unshifted, as in Hugging Face: the loss compares the
// logits at t with Labels[t+1], and Labels[0] is always IgnoreIndex. Truncation keeps the
// prompt and cuts the response's end; when the prompt alone is too long it keeps BOS and
// the prompt's end (the response cue) and cuts its start. Text documents become consecutive
// chunks; classification records become BOS + text [+ separator + text] + EOS with a class
// or score. Pack concatenates examples into fixed-length sequences with per-document
// positions and segment ids (the document boundaries), masking each document's first
// label.
//
// Batching (Collator): right padding with PAD (EOS when the tokenizer has no PAD) to the
// longest example or a fixed length, an attention mask, labels padded with IgnoreIndex and
// the batch's target-token count.
//
// Sampling (Sampler): every epoch e is ordered by Permutation(n, seed, e); a global batch
// is MicroBatch·AccumSteps·WorldSize consecutive examples of that order, and rank k takes
// its MicroBatch slots of every micro step. An epoch's partial last global batch is padded
// with flagged slots (PadLastBatch, the default; they add nothing to the loss) or dropped
// (DropLastBatch). Positions count examples, not steps, so a run resumes at a saved Cursor
// with the same order even with another world size. Loader ties it together and reports
// each step's global target-token count, computed locally on every rank.
//
// The files in testdata are small synthetic tasks for tests and demos (see
// testdata/README.md); regenerate them with go generate.
package data

//go:generate go run ./internal/synth/gen -out testdata
