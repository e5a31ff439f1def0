package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/lrtrain/lrtrain/internal/testkit"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func u8Tensor(name string, n int) Tensor {
	d := bytes.Repeat([]byte{byte(len(name))}, n)
	return Tensor{name, U8, []int64{int64(n)}, d, nil}
}

func TestWriteShardedGroupsLikeTransformers(t *testing.T) {
	dir := t.TempDir()
	in := []Tensor{u8Tensor("e", 40), u8Tensor("d", 40), u8Tensor("c", 40), u8Tensor("bb", 100), u8Tensor("a", 10)}
	if err := WriteSharded(dir, in, 100, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	// Taken in the given order: [e d] fill 80, c would make 120, bb alone, a after bb.
	want := map[string]string{"e": ShardName(1, 4), "d": ShardName(1, 4), "c": ShardName(2, 4), "bb": ShardName(3, 4), "a": ShardName(4, 4)}
	if !mapsEqual(idx.WeightMap, want) || idx.Metadata["total_size"] != 230 {
		t.Errorf("index = %s\nwant weight_map %v and total_size 230", raw, want)
	}
	if ShardName(2, 4) != "model-00002-of-00004.safetensors" {
		t.Errorf("ShardName(2, 4) = %s", ShardName(2, 4))
	}
	x, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if got := x.Names(); !slices.Equal(got, []string{"a", "bb", "c", "d", "e"}) {
		t.Errorf("Names() = %v", got)
	}
	for _, tn := range in {
		b, err := x.Bytes(tn.Name)
		if s, _ := x.Shard(tn.Name); err != nil || !bytes.Equal(b, tn.Data) || s != want[tn.Name] {
			t.Errorf("tensor %q: bytes ok=%v err=%v shard=%s", tn.Name, bytes.Equal(b, tn.Data), err, s)
		}
	}
	if v, err := x.Int64s("a"); err != nil || len(v) != 10 || v[0] != 1 {
		t.Errorf("Int64s(a) = %v, %v", v, err)
	}
	if x.TotalSize() != 230 || len(x.Shards()) != 4 || x.Metadata()["format"] != "pt" {
		t.Errorf("TotalSize %d, Shards %v, Metadata %v", x.TotalSize(), x.Shards(), x.Metadata())
	}
	if _, err := x.Bytes("zz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Bytes(missing) = %v", err)
	}
}

// Rewriting a model with another layout removes the files of the old one, so a loader
// cannot mix them.
func TestWriteShardedReplacesOldLayout(t *testing.T) {
	dir := t.TempDir()
	in := []Tensor{u8Tensor("a", 60), u8Tensor("b", 60), u8Tensor("c", 60)}
	if err := WriteSharded(dir, in, 100, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644)
	if err := WriteSharded(dir, in, 1000, nil); err != nil {
		t.Fatal(err)
	}
	if got := testkit.DirNames(t, dir); !slices.Equal(got, []string{"config.json", SingleFileName}) {
		t.Errorf("after a single-file save the directory holds %v", got)
	}
	if err := WriteSharded(dir, in, 130, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"config.json", ShardName(1, 2), ShardName(2, 2), IndexFileName}
	if got := testkit.DirNames(t, dir); !slices.Equal(got, want) {
		t.Errorf("after a 2-shard save the directory holds %v, want %v", got, want)
	}
	x, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
}

func TestOpenIndexSingleFile(t *testing.T) {
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, SingleFileName), []Tensor{u8Tensor("w", 3)}, nil); err != nil {
		t.Fatal(err)
	}
	x, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if s, _ := x.Shard("w"); s != SingleFileName || x.TotalSize() != 3 {
		t.Errorf("Shard(w) = %q, TotalSize = %d", s, x.TotalSize())
	}
}

func TestOpenIndexErrors(t *testing.T) {
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		in := []Tensor{u8Tensor("a", 60), u8Tensor("b", 60)}
		if err := WriteSharded(dir, in, 100, nil); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	editIndex := func(t *testing.T, dir, tensor, file string) {
		p := filepath.Join(dir, IndexFileName)
		var idx map[string]any
		raw, _ := os.ReadFile(p)
		json.Unmarshal(raw, &idx)
		idx["weight_map"].(map[string]any)[tensor] = file
		raw, _ = json.Marshal(idx)
		os.WriteFile(p, raw, 0o644)
	}
	t.Run("missing shard", func(t *testing.T) {
		dir := setup(t)
		os.Remove(filepath.Join(dir, ShardName(2, 2)))
		_, err := OpenIndex(dir)
		if !errors.Is(err, ErrCorrupt) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), ShardName(2, 2)) {
			t.Errorf("error = %v, want one naming the missing shard", err)
		}
	})
	t.Run("tensor not in its shard", func(t *testing.T) {
		dir := setup(t)
		editIndex(t, dir, "b", ShardName(1, 2))
		_, err := OpenIndex(dir)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `tensor "b" is mapped to `+ShardName(1, 2)) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("shard outside the directory", func(t *testing.T) {
		dir := setup(t)
		editIndex(t, dir, "a", "../elsewhere.safetensors")
		if _, err := OpenIndex(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "outside") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("index not JSON", func(t *testing.T) {
		dir := setup(t)
		os.WriteFile(filepath.Join(dir, IndexFileName), []byte("{weight_map"), 0o644)
		if _, err := OpenIndex(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), IndexFileName) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("corrupt shard", func(t *testing.T) {
		dir := setup(t)
		os.Truncate(filepath.Join(dir, ShardName(1, 2)), 20)
		if _, err := OpenIndex(dir); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), ShardName(1, 2)) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("no model", func(t *testing.T) {
		if _, err := OpenIndex(t.TempDir()); !errors.Is(err, ErrNotFound) {
			t.Errorf("error = %v, want ErrNotFound", err)
		}
	})
}
