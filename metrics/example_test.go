package metrics_test

import (
	"fmt"

	"github.com/lrtrain/lrtrain/metrics"
)

func Example() {
	gold := []int{0, 0, 0, 1, 1, 2, 2, 2}
	pred := []int{0, 0, 1, 1, 2, 2, 2, 0}
	acc, _ := metrics.Accuracy(gold, pred)
	f1, _ := metrics.F1Macro(gold, pred)
	mcc, _ := metrics.MCC(gold, pred)
	fmt.Printf("accuracy %.3f  macro-F1 %.3f  MCC %.3f\n", acc, f1, mcc)

	rho, _ := metrics.Spearman([]float64{1, 2, 2, 3}, []float64{10, 30, 20, 40})
	r, _ := metrics.Pearson([]float64{1, 1, 1}, []float64{1, 2, 3})
	fmt.Printf("spearman %.4f  pearson of a constant %v\n", rho, r)

	ppl, _ := metrics.Perplexity(693.1, 1000)
	fmt.Printf("perplexity %.3f\n", ppl)

	best, _ := metrics.Choose([]metrics.Option{{LogLik: -3.2, Tokens: 2}, {LogLik: -1.1, Tokens: 2}}, metrics.SumLogLik)
	fmt.Println("chosen option", best)

	answer, ok := metrics.ExtractAnswer("Answer1 is tempting, but the correct answer is answer3.", metrics.QAAnswers)
	fmt.Println(answer, ok)
	// Output:
	// accuracy 0.625  macro-F1 0.611  MCC 0.429
	// spearman 0.9487  pearson of a constant NaN
	// perplexity 2.000
	// chosen option 1
	// answer3 true
}
