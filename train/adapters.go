package train

import (
	"fmt"
	"math/rand/v2"

	"github.com/lrtrain/lrtrain/adapter"
	"github.com/lrtrain/lrtrain/lrlora"
	"github.com/lrtrain/lrtrain/model"
	"github.com/lrtrain/lrtrain/param"
)

// LoadAdapters attaches to m the adapters of the training checkpoint ckptDir: it
// verifies the checkpoint (checksums, trainer format), injects adapters as the
// manifest's options describe (method, r, α, targets, φ), and loads every tensor of the
// trainable list from adapter.safetensors — adapters, φ grids and, for classifiers,
// the head — refusing missing or extra tensors, other shapes or dtypes and non-finite
// values. m must be the base model the checkpoint was trained on, loaded without
// adapters (with the same num_labels for classifiers; VerifyBaseModel compares a model
// directory with the checkpoint's record). On an error m may hold partly loaded
// adapters: close it.
//
// With cross-layer φ sharing the shared tensors are not owned by m; use OpenAdapters
// to be able to free them.
func LoadAdapters(ckptDir string, m *model.Model) error {
	_, err := OpenAdapters(ckptDir, m)
	return err
}

// Adapters is the result of OpenAdapters.
type Adapters struct {
	Saved   *Saved         // the checkpoint (manifest and trainer state)
	Tensors []param.Tensor // the loaded trainable list, in checkpoint order
	shared  *lrlora.SharedPhi
}

// Close frees the shared φ tensors, if any; call it after closing the model.
func (a *Adapters) Close() {
	if a.shared != nil {
		a.shared.Close()
		a.shared = nil
	}
}

// OpenAdapters is LoadAdapters returning the checkpoint and the loaded tensors.
func OpenAdapters(ckptDir string, m *model.Model) (*Adapters, error) {
	s, err := OpenCheckpoint(ckptDir)
	if err != nil {
		return nil, err
	}
	if got, want := m.Architecture().Name, s.Manifest.Architecture; got != want {
		return nil, fmt.Errorf("%w: model.path: the model is a %s, the checkpoint %s was trained on a %s", ErrMismatch, got, ckptDir, want)
	}
	if len(m.Adapters()) > 0 {
		return nil, fmt.Errorf("train: load adapters from %s: the model already has %d adapters", ckptDir, len(m.Adapters()))
	}
	// The initial values are overwritten; the seed only has to be fixed.
	shared, err := injectAdapters(m, s.Manifest.Options, rand.New(rand.NewPCG(0, adapterStream)))
	if err != nil {
		return nil, fmt.Errorf("%w (options of %s)", err, ckptDir)
	}
	a := &Adapters{Saved: s, Tensors: trainableList(m.TrainableTensors(), shared), shared: shared}
	if err := s.loadParams(a.Tensors); err != nil {
		return nil, err
	}
	return a, nil
}

// VerifyBaseModel checks that the model directory modelDir is the base model the
// checkpoint was trained on (same config.json and weight layout; see BaseModel). A
// different path with the same identity is fine.
func VerifyBaseModel(ckptDir, modelDir string) error {
	s, err := OpenCheckpoint(ckptDir)
	if err != nil {
		return err
	}
	id, err := IdentifyBaseModel(modelDir)
	if err != nil {
		return err
	}
	if _, err := s.Manifest.BaseModel.compare(id); err != nil {
		return fmt.Errorf("%w (checkpoint %s)", err, ckptDir)
	}
	return nil
}

// saddleNote is logged once when a run starts LR-LoRA from the paper's a = 0 with φ not
// centred: the start docs/method.md §4.1 and §10 describe.
const saddleNote = "φ starts at a = 0 (the paper's start): φ is even there, so B and A get " +
	"gradient only through float rounding until a loses its symmetry, and φ(0) adds a constant " +
	"to every weight; adapter.phi.init=identity with adapter.phi.center=true starts off both " +
	"(docs/method.md §10)"

// startsAtSaddle reports whether s trains LR-LoRA from a = 0 with an uncentred φ. Every
// grid lrtrain builds is symmetric about 0 and every basis is even, so with B = 0 the
// first step's ∂a is symmetric in k and φ′(0) stays 0 in exact arithmetic. Residual φ is
// LoRA at a = 0 (φ′ = 1) and centred φ with a = 0 is refused by the config check.
func startsAtSaddle(s adapter.Spec) bool {
	return s.Method == adapter.LRLoRA && s.Phi.Resolved().Init == adapter.InitZero && !s.Phi.Centred()
}
