package train

import "fmt"

// initAdapters hands a run that starts fresh to Env.InitAdapters, which overwrites the
// freshly injected adapters (and heads, and a shared φ) with values of its own — an
// adapter exported earlier, e.g. by PEFT. A resumed run takes the checkpoint's values
// instead and does not call it. Rank 0's values then reach every rank as a fresh
// run's do (start broadcasts them), and AdamW starts from zero moments.
func (r *run) initAdapters() error {
	if r.env.InitAdapters == nil || r.saved != nil {
		return nil
	}
	if err := r.env.InitAdapters(r.params); err != nil {
		return fmt.Errorf("train: initial adapter values: %w", err)
	}
	r.log.Info().Int("tensors", len(r.params)).Msg("adapters start from the given values (Env.InitAdapters)")
	return nil
}
