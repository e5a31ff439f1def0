package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/lrtrain/lrtrain/safetensors"
)

// WeightsHashFile, under output.dir, caches the SHA-256 of each base-model weight file by
// its path, size and modification time, so that a resumed or restarted run does not read
// the whole model again to identify it.
const WeightsHashFile = "base-weights-sha256.json"

// racyWindow: a file modified less than this before it was hashed is not cached. A
// rewrite of the same size within the file system's timestamp granularity (a few ms
// on some, seconds on others) would otherwise keep its old modification time and be
// identified by the old content's hash; such a file is hashed again next time.
const racyWindow = 2 * time.Second

// weightsCache is WeightsHashFile's content.
type weightsCache struct {
	Files map[string]cachedSum `json:"files"` // absolute path → what was hashed
}

type cachedSum struct {
	Size    int64  `json:"size"`
	MTimeNS int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

// weightFiles are the files that hold the model's weights, as the loader reads them:
// model.safetensors when it exists, else every shard that the index names, in name order.
func weightFiles(dir string) ([]string, error) {
	single := filepath.Join(dir, safetensors.SingleFileName)
	if _, err := os.Stat(single); err == nil {
		return []string{single}, nil
	}
	raw, err := os.ReadFile(filepath.Join(dir, safetensors.IndexFileName))
	if err != nil {
		return nil, err
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &index); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, safetensors.IndexFileName), err)
	}
	var files []string
	for _, shard := range index.WeightMap {
		if p := filepath.Join(dir, shard); !slices.Contains(files, p) {
			files = append(files, p)
		}
	}
	slices.Sort(files)
	return files, nil
}

// contentSHA256 is the SHA-256 over the weight files' own SHA-256 sums (base name and sum
// per file, in order). With cache != "" the per-file sums are looked up in and added to
// that file, under an exclusive lock so that the ranks of one machine hash once; a cache
// that cannot be used only costs the hashing.
func contentSHA256(dir, cache string) (_ string, err error) {
	files, err := weightFiles(dir)
	if err != nil {
		return "", err
	}
	c := weightsCache{Files: map[string]cachedSum{}}
	if cache != "" {
		if f, lerr := openLocked(cache); lerr == nil {
			defer f.Close() // releases the lock
			raw, _ := io.ReadAll(f)
			if json.Unmarshal(raw, &c) != nil || c.Files == nil {
				c = weightsCache{Files: map[string]cachedSum{}} // new or damaged: rebuilt
			}
			defer func() {
				if err == nil {
					writeCache(f, c)
				}
			}()
		}
	}
	all := sha256.New()
	for _, path := range files {
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", err
		}
		info, err := os.Stat(abs)
		if err != nil {
			return "", err
		}
		key := cachedSum{Size: info.Size(), MTimeNS: info.ModTime().UnixNano()}
		sum, ok := c.Files[abs]
		if !ok || sum.Size != key.Size || sum.MTimeNS != key.MTimeNS {
			if key.SHA256, err = hashFile(abs, -1); err != nil {
				return "", err
			}
			sum = key
			if time.Since(info.ModTime()) >= racyWindow {
				c.Files[abs] = key
			} else {
				delete(c.Files, abs) // racy: rehashed next time
			}
		}
		fmt.Fprintf(all, "%s %s\n", filepath.Base(abs), sum.SHA256)
	}
	return hex.EncodeToString(all.Sum(nil)), nil
}

// openLocked opens (creating) path and takes an exclusive flock on it, waiting for
// another process that holds it.
func openLocked(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// writeCache replaces the locked cache file's content. A crash half-way leaves a file
// that does not decode, which the next run rebuilds.
func writeCache(f *os.File, c weightsCache) {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(append(raw, '\n'), 0)
	}
}
