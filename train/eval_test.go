package train

import (
	"context"
	"io"
	"math"
	"testing"
)

// With lr = 0 the evaluation loss never gets lower, so patience 2 stops the run at the
// third evaluation; every evaluation is in metrics.jsonl with its perplexity and the
// hook's metrics, and the final checkpoint records why the run ended.
func TestEarlyStoppingAfterPatienceEvaluations(t *testing.T) {
	o := tinyOptions(t, t.TempDir())
	o.Data.Eval = []string{testdata("alpaca_tiny_eval.json")}
	o.Train.LR, o.Train.EvalEvery, o.Train.Patience, o.Train.MaxSteps = 0, 1, 2, 10
	o.Train.MicroBatchSize, o.Train.GradAccumSteps = 4, 1
	var hookSteps []int64
	hook := func(ec EvalContext) (map[string]float64, error) {
		hookSteps = append(hookSteps, ec.Step)
		if ec.Model.Training() || len(ec.Eval) != 40 {
			t.Errorf("hook sees training mode %v, %d eval examples", ec.Model.Training(), len(ec.Eval))
		}
		return map[string]float64{"answer_accuracy": 0.25}, nil
	}
	res, err := Run(context.Background(), o, Env{Console: io.Discard, Hooks: Hooks{Eval: hook}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != "early stopping" || res.Step != 3 || res.BestEvalLoss == nil {
		t.Fatalf("result %+v", res)
	}
	_, evals := metricsOf(t, o.Output.Dir)
	if len(evals) != 3 || len(hookSteps) != 3 {
		t.Fatalf("%d eval records, hook called at %v; want 3", len(evals), hookSteps)
	}
	first := evals[0]["eval_loss"].(float64)
	for i, e := range evals {
		loss := e["eval_loss"].(float64)
		if int64(e["step"].(float64)) != int64(i+1) || loss != first || e["answer_accuracy"].(float64) != 0.25 ||
			math.Abs(e["eval_ppl"].(float64)-math.Exp(loss)) > 1e-9*math.Exp(loss) {
			t.Errorf("eval record %d: %v", i, e)
		}
	}
	if *res.BestEvalLoss != first || first < 5 || first > 7 {
		t.Errorf("best eval loss %v, first %v (a random tiny model scores about ln 512 ≈ 6.2)", *res.BestEvalLoss, first)
	}
	s, err := OpenCheckpoint(ckptDir(o, 3))
	if err != nil {
		t.Fatal(err)
	}
	if st := s.State; !st.Finished || st.Reason != "early stopping" || st.EvalsWithoutImprovement != 2 || st.BestStep != 1 {
		t.Errorf("final state %+v", st)
	}
	// Resuming the stopped run trains no further.
	o.Train.MaxSteps = 20
	if res, err = Run(context.Background(), o, Env{Console: io.Discard}); err != nil || res.Reason != "already finished" {
		t.Errorf("resume after early stopping: %+v, %v", res, err)
	}
}
