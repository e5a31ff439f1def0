// Package evaluate measures models and what their adapters learned.
//
// Every evaluator runs the model in eval mode and without autograd, on batches built
// exactly as in training (Pipeline: the tokenizer, data.Builder's templates, truncation
// and prompt masking, data.Collator's right padding), and hands the predictions to
// package metrics:
//
//   - LanguageModel: the summed next-token cross-entropy (model.CausalLMLoss) over the
//     labelled tokens of all examples and their count; loss and perplexity follow
//     (token-weighted, so batch size and padding change nothing).
//   - Classify: argmax classes of a sequence classifier (or scores of a one-label
//     regression model) next to the gold labels; Run reports accuracy, F1 (binary for
//     two classes, macro otherwise), macro F1 and MCC, or Pearson, Spearman and MSE.
//   - ScoreChoices: multiple choice by option log-likelihood. ChoicesFromRecords reads
//     commonsense-170k records: the options are the instruction's "Answer format:
//     a/b/…" list, each scored as the record's output with the gold answer swapped for
//     the option ("the correct answer is answer1"), EOS excluded; the pick is
//     metrics.Choose's by summed (accuracy) or per-token (accuracy_norm) log-likelihood.
//   - Greedy and Generate: greedy decoding without a KV cache — each new token reruns
//     the whole sequence, fine for tiny models and short answers only — and answer
//     extraction with metrics.ExtractAnswer against the record's answer.
//
// Run ties them to a task name (lm, classification, multiple-choice, generate) and
// returns a Report, printed as a table and saved as JSON (undefined values as null).
//
// AnalyzeAdapters reports what each adapter learned: the stable ranks of ΔW (from
// Adapter.DeltaWeight) and of B·A, their singular values from a float64 SVD (torch.svd
// without U and V: linalg_svdvals is unusable through gotch on libtorch's CPU build,
// which rejects the driver argument gotch always passes), and φ sampled on
// [−L−1, L+1] through phiop.Apply on a 1-D tensor of points. lrtrain inspect plots them
// with package inspect.
//
// Tests compare against values computed independently in the test: per-sequence
// float64 log-softmax for perplexity and option log-likelihoods, textbook confusion-
// count formulas for accuracy, F1 and MCC, Pearson from sums, the argmax of a single
// full-sequence pass for greedy decoding, a Jacobi eigen-solver for singular values and
// a host-side Σ a_k sinc(b_k(x − g_k)) for φ.
package evaluate
