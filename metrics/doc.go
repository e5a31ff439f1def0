// Package metrics computes the evaluation metrics of lrtrain's tasks, in plain Go:
//
//   - classification: Accuracy, F1Macro, F1Micro, F1Binary, MCC (Matthews, two or more
//     classes in Gorodkin's generalisation, as scikit-learn), from gold and predicted class
//     indices (gold first, as scikit-learn's y_true, y_pred);
//   - regression (STS-B): Pearson, and Spearman with average ranks for ties (Ranks);
//   - language modelling: Perplexity = exp(ΣNLL / tokens) from the summed NLL and the token
//     count, so that batches weigh by their tokens;
//   - multiple choice by option log-likelihood: Choose picks the option with the largest
//     summed log-likelihood (SumLogLik, the default: lm-evaluation-harness's acc, right for
//     commonsense-170k's equal-length answer tokens) or per-token mean (MeanLogLik, for
//     options of different lengths); ties go to the first option;
//   - generated answers in the commonsense-170k style: ExtractAnswer reads the answer after
//     "the correct answer is", else the first answer token (true/false, solution1/2,
//     answer1–5, ending1–4, option1/2, A–E) as a whole token; AnswerAccuracy scores a mixed
//     dataset, each record with the token set of its gold answer. ExtractAnswer's doc
//     lists the rules and how they differ from LLM-Adapters' extract_answer.
//
// Edge cases are fixed conventions, not errors: MCC is 0 when all predictions (or all
// gold labels) are one class; F1 of a class in neither gold nor pred is 0; Pearson and
// Spearman are NaN, with a nil error, when an input is constant (this includes a single
// example). Empty input is ErrEmpty, unequal lengths ErrLength, NaN inputs ErrNotFinite.
//
// The tests check hand-worked examples and golden values from testdata/metrics_ref.py,
// an independent plain-Python implementation (Debian's python3 has no scipy or sklearn):
//
//	/usr/bin/python3 metrics/testdata/metrics_ref.py > metrics/testdata/metrics_golden.json
package metrics
