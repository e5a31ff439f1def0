#!/usr/bin/python3
"""Reference values for package metrics, computed independently of the Go code.

Regenerate (from the repository root) with

    /usr/bin/python3 metrics/testdata/metrics_ref.py > metrics/testdata/metrics_golden.json

Only the Python standard library is used (Debian's python3 has no scipy or sklearn):
the formulas are written from their definitions, by routes different from the Go code's:

* F1 from per-class precision and recall (Go: 2tp/(2tp+fp+fn) from a confusion matrix);
  macro over the labels present in gold or pred, micro from pooled counts, binary for
  pos_label 1; 0 where a ratio is 0/0 (scikit-learn's zero_division=0).
* MCC as Gorodkin's covariance of one-hot indicator matrices,
  cov(X, Y) / sqrt(cov(X, X) cov(Y, Y)), with cov(X, Y) = sum_k sum_n (X_nk - mean_k X)(Y_nk - mean_k Y)
  (Go: the confusion-matrix form); 0 when a denominator factor is 0.
* Pearson with statistics.correlation; Spearman as the correlation of average ranks
  computed by grouping equal values; None (NaN in Go) for constant input.
* Perplexity as math.exp of the mean NLL.
* Answer extraction with regular expressions for the rules documented in answer.go.
"""
import json
import math
import random
import re
import statistics


def f1_from_pr(tp, fp, fn):
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def class_counts(gold, pred, label):
    tp = sum(1 for g, p in zip(gold, pred) if g == label and p == label)
    fp = sum(1 for g, p in zip(gold, pred) if g != label and p == label)
    fn = sum(1 for g, p in zip(gold, pred) if g == label and p != label)
    return tp, fp, fn


def f1_macro(gold, pred):
    labels = sorted(set(gold) | set(pred))
    return sum(f1_from_pr(*class_counts(gold, pred, l)) for l in labels) / len(labels)


def f1_micro(gold, pred):
    labels = sorted(set(gold) | set(pred))
    tp = fp = fn = 0
    for l in labels:
        a, b, c = class_counts(gold, pred, l)
        tp, fp, fn = tp + a, fp + b, fn + c
    return f1_from_pr(tp, fp, fn)


def mcc(gold, pred):
    labels = sorted(set(gold) | set(pred))
    n = len(gold)
    x = [[1.0 if g == l else 0.0 for l in labels] for g in gold]
    y = [[1.0 if p == l else 0.0 for l in labels] for p in pred]

    def cov(a, b):
        total = 0.0
        for k in range(len(labels)):
            ma = sum(row[k] for row in a) / n
            mb = sum(row[k] for row in b) / n
            total += sum((a[i][k] - ma) * (b[i][k] - mb) for i in range(n))
        return total

    den = cov(x, x) * cov(y, y)
    return cov(x, y) / math.sqrt(den) if den > 0 else 0.0


def avg_ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    ranks = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + 1 + j + 1) / 2
        i = j + 1
    return ranks


def pearson(x, y):
    if len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return statistics.correlation(x, y)


def classification_case(name, gold, pred):
    return {
        "name": name, "gold": gold, "pred": pred,
        "accuracy": sum(g == p for g, p in zip(gold, pred)) / len(gold),
        "f1_macro": f1_macro(gold, pred),
        "f1_micro": f1_micro(gold, pred),
        "f1_binary": f1_from_pr(*class_counts(gold, pred, 1)),
        "mcc": mcc(gold, pred),
    }


def noisy(rng, gold, labels, keep):
    return [g if rng.random() < keep else rng.choice(labels) for g in gold]


def classification_cases(rng):
    cases = []
    g = [rng.randint(0, 1) for _ in range(50)]
    cases.append(classification_case("binary random", g, [rng.randint(0, 1) for _ in range(50)]))
    g = [1 if rng.random() < 0.2 else 0 for _ in range(80)]
    cases.append(classification_case("binary imbalanced", g, noisy(rng, g, [0, 1], 0.7)))
    g = [rng.randint(0, 2) for _ in range(40)]
    cases.append(classification_case("3 classes", g, noisy(rng, g, [0, 1, 2], 0.6)))
    g = [rng.randint(0, 4) for _ in range(200)]
    cases.append(classification_case("5 classes", g, noisy(rng, g, [0, 1, 2, 3, 4], 0.5)))
    g = [rng.choice([0, 2, 7]) for _ in range(30)]
    cases.append(classification_case("sparse labels, extra predicted label", g, noisy(rng, g, [0, 2, 7, 9], 0.5)))
    cases.append(classification_case("constant prediction", g, [2] * len(g)))
    cases.append(classification_case("perfectly wrong", [0, 1, 0, 1, 1], [1, 0, 1, 0, 0]))
    cases.append(classification_case("no positives", [0, 0, 2], [0, 2, 2]))
    return cases


def correlation_cases(rng):
    cases = []

    def case(name, x, y):
        cases.append({"name": name, "x": x, "y": y, "pearson": pearson(x, y),
                      "spearman": pearson(avg_ranks(x), avg_ranks(y)),
                      "ranks_x": avg_ranks(x)})

    x = [rng.gauss(0, 1) for _ in range(30)]
    case("gaussian, correlated", x, [v + rng.gauss(0, 0.7) for v in x])
    x = [float(rng.randint(0, 4)) for _ in range(40)]
    case("ties (integer scores)", x, [float(rng.randint(0, 5)) for _ in range(40)])
    x = [rng.uniform(0, 5) for _ in range(25)]
    case("monotone, non-linear", x, [math.exp(v) for v in x])
    case("anti-monotone with ties", [1.0, 2.0, 2.0, 3.0, 4.0], [9.0, 7.0, 7.0, 5.0, -1.0])
    case("two points", [0.5, 1.5], [3.0, -2.0])
    case("constant y", [1.0, 2.0, 3.0], [0.1, 0.1, 0.1])
    case("stsb-like", [rng.uniform(0, 5) for _ in range(60)], [rng.uniform(0, 5) for _ in range(60)])
    return cases


def perplexity_cases():
    out = []
    for s, n in [(0.0, 1), (2.302585092994046, 1), (1234.5, 1000), (7.0, 3), (5000.0, 10)]:
        out.append({"sum_nll": s, "tokens": n, "perplexity": math.exp(s / n)})
    return out


SETS = [["true", "false"], ["solution1", "solution2"], ["answer1", "answer2", "answer3", "answer4", "answer5"],
        ["ending1", "ending2", "ending3", "ending4"], ["option1", "option2"], ["A", "B", "C", "D", "E"]]


def find_first(text, choices):
    best = None
    for c in choices:
        flags = 0 if len(c) == 1 else re.IGNORECASE
        m = re.search(r"(?<!\w)" + re.escape(c) + r"(?!\w)", text, flags)
        if m and (best is None or m.start() < best[0] or (m.start() == best[0] and len(c) > len(best[1]))):
            best = (m.start(), c)
    return best[1] if best else ""


def extract(text, choices):
    if "### Response:" in text:
        text = text.split("### Response:", 1)[1]
    m = re.search("the correct answer is", text, re.IGNORECASE)
    if m:
        got = find_first(text[m.end():], choices)
        if got:
            return got
    return find_first(text, choices)


def answer_cases():
    texts = [
        ("the correct answer is answer2", 2),
        ("The correct answer is Answer3.", 2),
        ("answer1 is tempting, but the correct answer is answer4", 2),
        ("the correct answer is unclear; answer5 maybe", 2),
        ("answer10 and answer1", 2),
        ("the correct answer is true", 0),
        ("It is untrue. False.", 0),
        ("the correct answer is solution2</s>", 1),
        ("ending3", 3),
        ("the correct answer is option1", 4),
        ("option_1 or option2", 4),
        ("Apple. I pick a B", 5),
        ("the correct answer is (C)", 5),
        ("### Instruction:\nanswer1 or answer2?\n\n### Response:\nthe correct answer is answer2", 2),
        ("no idea", 2),
        ("", 0),
    ]
    return [{"text": t, "set": SETS[s], "answer": extract(t, SETS[s])} for t, s in texts]


def main():
    rng = random.Random(20240611)
    out = {
        "version": 1,
        "generator": "metrics/testdata/metrics_ref.py",
        "classification": classification_cases(rng),
        "correlation": correlation_cases(rng),
        "perplexity": perplexity_cases(),
        "answers": answer_cases(),
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
