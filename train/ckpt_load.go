package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lrtrain/lrtrain/checkpoint"
	"github.com/lrtrain/lrtrain/optim"
	"github.com/lrtrain/lrtrain/param"
	"github.com/lrtrain/lrtrain/safetensors"
)

// Saved is a verified training checkpoint: package checkpoint has checked its manifest,
// every file's size and SHA-256 and that no file is missing or extra; OpenCheckpoint has
// checked the trainer's format and decoded the manifest and trainer.json.
type Saved struct {
	Dir      string
	Step     int64
	Manifest Manifest
	State    State
}

// OpenCheckpoint verifies the checkpoint directory dir and reads its manifest and
// trainer state (not its tensors). Errors name the file at fault.
func OpenCheckpoint(dir string) (*Saved, error) {
	c, err := checkpoint.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	s := &Saved{Dir: c.Dir, Step: c.Step}
	manifest := filepath.Join(dir, checkpoint.ManifestName)
	if err := c.DecodeManifest(&s.Manifest); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	m := s.Manifest
	switch {
	case m.TrainerFormat != TrainerFormat:
		return nil, fmt.Errorf("%w: %s: trainer_format %q, want %q (not a training checkpoint?)", ErrCheckpoint, manifest, m.TrainerFormat, TrainerFormat)
	case m.TrainerFormatVersion < 1 || m.TrainerFormatVersion > TrainerFormatVersion:
		return nil, fmt.Errorf("%w: %s: trainer_format_version %d, this build reads 1 to %d", ErrCheckpoint, manifest, m.TrainerFormatVersion, TrainerFormatVersion)
	case m.WorldSize < 1:
		return nil, fmt.Errorf("%w: %s: world_size %d", ErrCheckpoint, manifest, m.WorldSize)
	}
	for _, name := range []string{AdapterFile, OptimizerFile, TrainerFile} {
		if _, ok := c.Files[name]; !ok {
			return nil, fmt.Errorf("%w: %s: no %s", ErrCheckpoint, dir, name)
		}
	}
	raw, err := readFile(c.Path(TrainerFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.State); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCheckpoint, c.Path(TrainerFile), err)
	}
	if s.State.Step != s.Step || s.State.Step < 0 {
		return nil, fmt.Errorf("%w: %s: step %d, the manifest says %d", ErrCheckpoint, c.Path(TrainerFile), s.State.Step, s.Step)
	}
	return s, nil
}

// restore loads the checkpoint resumed from into the run: adapter tensors, optimizer
// state, data position and RNG state. Every rank loads the same checkpoint; a sum of
// the steps checks that they did.
func (r *run) restore(ctx context.Context) error {
	s := r.saved
	st := s.State
	if err := s.loadParams(r.params); err != nil {
		return err
	}
	if err := s.loadOptimizer(r.opt); err != nil {
		return err
	}
	if err := r.sampler.Resume(st.Cursor); err != nil {
		return fmt.Errorf("train: resume %s: %w (data.train, data.seed or data.shuffle changed?)", s.Dir, err)
	}
	if len(st.RNG) > 0 {
		if err := r.pcg.UnmarshalBinary(st.RNG); err != nil {
			return fmt.Errorf("%w: %s: rng: %v", ErrCheckpoint, s.Dir, err)
		}
	}
	steps := []float64{float64(st.Step)}
	if err := sumAcrossRanks(ctx, r.g, steps); err != nil {
		return err
	}
	if steps[0] != float64(st.Step)*float64(r.g.Size()) {
		return fmt.Errorf("train: ranks resumed from different checkpoints (rank %d: %s, step %d)", r.rank, s.Dir, st.Step)
	}
	st.WorldSize = r.g.Size()
	r.st = st
	return nil
}

// readTensors opens a safetensors file of the checkpoint and returns its tensors,
// copied out of the mapping, checked for finiteness (float tensors).
func (s *Saved) readTensors(name string) (map[string]hostTensor, error) {
	path := filepath.Join(s.Dir, name)
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	defer f.Close()
	out := map[string]hostTensor{}
	for _, tn := range f.Names() {
		info, _ := f.Info(tn)
		b, err := f.Bytes(tn)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCheckpoint, path, err)
		}
		h := hostTensor{name: tn, dtype: info.DType, shape: slices.Clone(info.Shape), data: aligned(b)}
		if i := h.firstNonFinite(); i >= 0 {
			return nil, fmt.Errorf("%w: %s: tensor %s has a non-finite value at element %d", ErrCheckpoint, path, tn, i)
		}
		out[tn] = h
	}
	return out, nil
}

// aligned copies b into memory aligned for 8-byte elements.
func aligned(b []byte) []byte {
	words := make([]uint64, (len(b)+7)/8)
	out := bytesOf(words)[:len(b)]
	copy(out, b)
	return out
}

// loadParams writes the checkpoint's adapter tensors into params. The file must hold
// exactly the tensors of the list, with their shapes and dtypes; errors name every
// missing and extra tensor.
func (s *Saved) loadParams(params []param.Tensor) error {
	saved, err := s.readTensors(AdapterFile)
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, AdapterFile)
	want := map[string]bool{}
	var missing []string
	for _, p := range params {
		want[p.Name] = true
		if _, ok := saved[p.Name]; !ok {
			missing = append(missing, p.Name)
		}
	}
	var extra []string
	for name := range saved {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		slices.Sort(extra)
		return fmt.Errorf("%w: %s: missing tensors %s; unexpected tensors %s", ErrCheckpoint, path, list(missing), list(extra))
	}
	for _, p := range params {
		if err := writeInto(p.Tensor, saved[p.Name]); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCheckpoint, path, err)
		}
	}
	return nil
}

// loadOptimizer restores the AdamW state of every parameter the checkpoint has state for.
func (s *Saved) loadOptimizer(opt *optim.AdamW) error {
	saved, err := s.readTensors(OptimizerFile)
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, OptimizerFile)
	used := map[string]bool{}
	for _, p := range opt.Params() {
		avg, okA := saved[p.Name+optim.ExpAvgSuffix]
		sq, okS := saved[p.Name+optim.ExpAvgSqSuffix]
		step, okN := saved[p.Name+stepSuffix]
		if !okA && !okS && !okN {
			continue // no state yet (the parameter never had a gradient)
		}
		if !okA || !okS || !okN {
			return fmt.Errorf("%w: %s: parameter %s has only part of its state (exp_avg %v, exp_avg_sq %v, step %v)",
				ErrCheckpoint, path, p.Name, okA, okS, okN)
		}
		used[avg.name], used[sq.name], used[step.name] = true, true, true
		if step.dtype != safetensors.I64 || len(step.data) != 8 {
			return fmt.Errorf("%w: %s: %s is %s%v, want I64[1]", ErrCheckpoint, path, step.name, step.dtype, step.shape)
		}
		n := int64(le64(step.data))
		if err := setMoments(opt, p.Name, n, avg, sq); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCheckpoint, path, err)
		}
	}
	var extra []string
	for name := range saved {
		if !used[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fmt.Errorf("%w: %s: tensors for no trainable parameter: %s", ErrCheckpoint, path, list(extra))
	}
	return nil
}

// setMoments hands one parameter's moments to the optimizer, which copies them.
func setMoments(opt *optim.AdamW, name string, step int64, avg, sq hostTensor) error {
	ta, err := hostToTensor(avg)
	if err != nil {
		return err
	}
	defer ta.Drop()
	tsq, err := hostToTensor(sq)
	if err != nil {
		return err
	}
	defer tsq.Drop()
	if err := opt.SetState(name, optim.ParamState{Step: step, ExpAvg: ta, ExpAvgSq: tsq}); err != nil {
		return err
	}
	return nil
}

// list names a few tensors for an error message.
func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	const show = 8
	if len(names) > show {
		return strings.Join(names[:show], ", ") + fmt.Sprintf(" and %d more", len(names)-show)
	}
	return strings.Join(names, ", ")
}

// findResume picks the checkpoint a run resumes from: "never" → none (and the
// checkpoint directory must hold no checkpoint), "auto" → the newest valid one under
// root (none when there is none; skipped directories are reported), otherwise the
// checkpoint directory given, or the newest valid checkpoint in a directory of
// checkpoints given (root itself is "auto", without the fresh start).
func findResume(resume, root string) (s *Saved, skipped []checkpoint.Skipped, err error) {
	if resume != "never" && resume != "auto" && resume != "" && isCheckpointRoot(resume) {
		c, skipped, err := checkpoint.LatestValid(resume)
		if err != nil {
			return nil, skipped, fmt.Errorf("train: checkpoint.resume %s: %w", resume, err)
		}
		if !sameDir(resume, root) {
			skipped = nil // another run's directory: its invalid checkpoints are not set aside
		}
		s, err := OpenCheckpoint(c.Dir)
		return s, skipped, err
	}
	switch resume {
	case "never":
		if c, _, err := checkpoint.LatestValid(root); err == nil {
			return nil, nil, fmt.Errorf("%w: %s holds checkpoints up to step %d; resume with --resume auto, or start in a new output directory",
				ErrExists, root, c.Step)
		}
		return nil, nil, nil
	case "auto", "":
		c, skipped, err := checkpoint.LatestValid(root)
		if errors.Is(err, checkpoint.ErrNoCheckpoint) {
			// A missing pointer and uncommitted directories are what a crash during the
			// first save leaves: start afresh. Corrupt checkpoints are not ignored.
			for _, sk := range skipped {
				if !errors.Is(sk.Err, checkpoint.ErrNoCheckpoint) && !errors.Is(sk.Err, checkpoint.ErrUncommitted) {
					return nil, skipped, fmt.Errorf("train: resume auto: no valid checkpoint under %s: %w", root, sk.Err)
				}
			}
			return nil, skipped, nil
		}
		if err != nil {
			return nil, skipped, fmt.Errorf("train: resume auto: %w", err)
		}
		s, err := OpenCheckpoint(c.Dir)
		return s, skipped, err
	}
	if _, err := os.Stat(filepath.Join(resume, checkpoint.ManifestName)); errors.Is(err, fs.ErrNotExist) {
		if info, serr := os.Stat(resume); serr == nil && info.IsDir() {
			return nil, nil, fmt.Errorf("%w: checkpoint.resume %s is neither a checkpoint (no %s) nor a directory of checkpoints "+
				"(no step-NNNNNN directory, no %s pointer); want auto, never, a checkpoint such as %s, or the directory holding them",
				ErrConfig, resume, checkpoint.ManifestName, checkpoint.LatestName, filepath.Join(root, checkpoint.DirName(100)))
		}
	}
	s, err = OpenCheckpoint(resume)
	return s, nil, err
}

// isCheckpointRoot reports a directory of checkpoints: no manifest of its own, and a
// latest pointer or a step-NNNNNN directory inside.
func isCheckpointRoot(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, checkpoint.ManifestName)); err == nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.LatestName)); err == nil {
		return true
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, ok := checkpoint.ParseDirName(e.Name()); ok && e.IsDir() {
			return true
		}
	}
	return false
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) bool {
	ia, errA := os.Stat(a)
	ib, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(ia, ib)
}
