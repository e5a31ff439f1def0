package train

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lrtrain/lrtrain/safetensors"
)

// BaseModel identifies the frozen model a fine-tune was trained on: the SHA-256 of
// config.json, of the weight index (sharded models) or of the safetensors header of
// model.safetensors (names, dtypes, shapes and offsets of every tensor), and of the
// weights themselves (ContentSHA256). The header tells different architectures, sizes,
// dtypes and layouts apart at once; the content tells apart two models of the same
// layout (two fine-tunes of one base, a re-initialised model). Hashing the content reads
// every weight file once (0.16-0.27 s for the small preset's 128 MB on a loaded 2-core
// VM); the sums are cached by path, size and modification time in the run's
// WeightsHashFile, so a resumed run does not hash again (1-5 ms).
type BaseModel struct {
	Path          string `json:"path"`
	ConfigSHA256  string `json:"config_sha256"`
	WeightsFile   string `json:"weights_file"` // model.safetensors.index.json or model.safetensors
	WeightsSHA256 string `json:"weights_sha256"`
	// ContentSHA256 is the SHA-256 over the SHA-256 of every weight file (base name and
	// sum, in name order); empty in checkpoints written before it was recorded.
	ContentSHA256 string `json:"content_sha256,omitempty"`
}

// IdentifyBaseModel computes the identity of the model directory dir, hashing all of its
// weights.
func IdentifyBaseModel(dir string) (BaseModel, error) { return identifyBaseModel(dir, "") }

// identifyBaseModel is IdentifyBaseModel with the weight files' sums cached in the file
// cache ("" for none).
func identifyBaseModel(dir, cache string) (BaseModel, error) {
	id := BaseModel{Path: dir}
	if abs, err := filepath.Abs(dir); err == nil {
		id.Path = abs
	}
	var err error
	if id.ConfigSHA256, err = hashFile(filepath.Join(dir, "config.json"), -1); err != nil {
		return id, fmt.Errorf("train: identify base model: %w", err)
	}
	index := filepath.Join(dir, safetensors.IndexFileName)
	id.WeightsFile = safetensors.IndexFileName
	id.WeightsSHA256, err = hashFile(index, -1)
	if errors.Is(err, fs.ErrNotExist) {
		id.WeightsFile = safetensors.SingleFileName
		id.WeightsSHA256, err = hashSafetensorsHeader(filepath.Join(dir, safetensors.SingleFileName))
	}
	if err == nil {
		id.ContentSHA256, err = contentSHA256(dir, cache)
	}
	if err != nil {
		return id, fmt.Errorf("train: identify base model: %w", err)
	}
	return id, nil
}

// hashFile hashes the first limit bytes of a file (all of it when limit < 0).
func hashFile(path string, limit int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit)
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashSafetensorsHeader hashes the 8-byte length and the JSON header of a safetensors file.
func hashSafetensorsHeader(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	var n [8]byte
	_, err = io.ReadFull(f, n[:])
	f.Close()
	if err != nil {
		return "", fmt.Errorf("read header of %s: %w", path, err)
	}
	size := binary.LittleEndian.Uint64(n[:])
	if size > 100<<20 {
		return "", fmt.Errorf("%s: header of %d bytes", path, size)
	}
	return hashFile(path, 8+int64(size))
}

// compare reports how the identity of the model the options name differs from the
// saved one: an error when the content differs, a note when only the path does (or when
// the checkpoint predates the weights' hash, so that only their layout could be compared).
func (saved BaseModel) compare(now BaseModel) (note string, err error) {
	switch {
	case saved.ConfigSHA256 != now.ConfigSHA256:
		return "", fmt.Errorf("%w: model.path: %s/config.json has SHA-256 %s, the checkpoint was trained on %s whose config.json had %s",
			ErrMismatch, now.Path, short(now.ConfigSHA256), saved.Path, short(saved.ConfigSHA256))
	case saved.WeightsFile != now.WeightsFile || saved.WeightsSHA256 != now.WeightsSHA256:
		return "", fmt.Errorf("%w: model.path: the weights of %s (%s, SHA-256 %s) are not those the checkpoint was trained on (%s in %s, SHA-256 %s)",
			ErrMismatch, now.Path, now.WeightsFile, short(now.WeightsSHA256), saved.WeightsFile, saved.Path, short(saved.WeightsSHA256))
	case saved.ContentSHA256 != "" && saved.ContentSHA256 != now.ContentSHA256:
		return "", fmt.Errorf("%w: model.path: the weights of %s (SHA-256 %s) are not those the checkpoint was trained on "+
			"(%s, SHA-256 %s): another model with the same config and layout",
			ErrMismatch, now.Path, short(now.ContentSHA256), saved.Path, short(saved.ContentSHA256))
	case saved.ContentSHA256 == "":
		return fmt.Sprintf("the checkpoint records no hash of its base model's weights (an older lrtrain): only config.json and the weight layout of %s were compared", now.Path), nil
	case saved.Path != now.Path:
		return fmt.Sprintf("base model moved from %s to %s (same config and weights)", saved.Path, now.Path), nil
	}
	return "", nil
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
