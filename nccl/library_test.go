package nccl

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// requireUnloaded puts the package back into its pre-Init state.
func requireUnloaded(t *testing.T) {
	t.Helper()
	if err := Shutdown(); err != nil {
		t.Fatal(err)
	}
}

func TestInitWithoutLibraryNamesWhatWasTried(t *testing.T) {
	requireUnloaded(t)
	missing := filepath.Join(t.TempDir(), "libnccl.so.2")
	t.Setenv(EnvNCCLLibrary, missing)
	err := Init()
	if !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("Init() = %v, want ErrLibraryNotFound", err)
	}
	var le *LoadError
	if !errors.As(err, &le) || len(le.Tried) != 1 || le.Tried[0].Path != missing {
		t.Fatalf("want one attempt at %s, got %#v", missing, le)
	}
	// The dlerror text is passed through, naming the file.
	if !strings.Contains(err.Error(), missing+": cannot open shared object file") {
		t.Errorf("message lacks the dlerror text: %v", err)
	}
	if Loaded() {
		t.Error("a failed Init must leave the package unloaded")
	}
}

func TestInitDefaultSearchListsLoaderAndDirectories(t *testing.T) {
	requireUnloaded(t)
	dir := t.TempDir()
	t.Setenv(EnvNCCLLibrary, "")
	t.Setenv("LD_LIBRARY_PATH", dir)
	err := Init()
	if err == nil {
		requireUnloaded(t)
		t.Skip("this machine has a real libnccl; the not-found path cannot be exercised")
	}
	var le *LoadError
	if !errors.As(err, &le) || le.Library != "libnccl" {
		t.Fatalf("Init() = %v, want a libnccl LoadError", err)
	}
	var paths []string
	for _, a := range le.Tried {
		paths = append(paths, a.Path)
	}
	if !slices.Contains(paths, "libnccl.so.2") {
		t.Errorf("tried %v, lacks the loader's libnccl.so.2", paths)
	}
	if !slices.Contains(le.Empty, dir) || !strings.Contains(err.Error(), dir) {
		t.Errorf("the LD_LIBRARY_PATH directory %s is not named: %v", dir, err)
	}
}

func TestCallsBeforeInitReturnErrNotLoaded(t *testing.T) {
	requireUnloaded(t)
	c := &Comm{h: 1, nranks: 1}
	calls := map[string]func() error{
		"GetVersion":    func() error { _, err := GetVersion(); return err },
		"GetUniqueID":   func() error { _, err := GetUniqueID(); return err },
		"CommInitRank":  func() error { _, err := CommInitRank(1, UniqueID{}, 0); return err },
		"AllReduce":     func() error { return c.AllReduce(1, 1, 1, Float32, Sum, 0) },
		"AllGather":     func() error { return c.AllGather(1, 1, 1, Float32, 0) },
		"Broadcast":     func() error { return c.Broadcast(1, 1, 1, Float32, 0, 0) },
		"ReduceScatter": func() error { return c.ReduceScatter(1, 1, 1, Float32, Sum, 0) },
		"Reduce":        func() error { return c.Reduce(1, 1, 1, Float32, Sum, 0, 0) },
		"Count":         func() error { _, err := c.Count(); return err },
		"AsyncError":    c.AsyncError,
		"GroupStart":    GroupStart,
		"GroupEnd":      GroupEnd,
		"DeviceCount":   func() error { _, err := DeviceCount(); return err },
		"SetDevice":     func() error { return SetDevice(0) },
		"Malloc":        func() error { _, err := Malloc(4); return err },
		"CopyToDevice":  func() error { return CopyToDevice(1, []float32{1}) },
		"StreamCreate":  func() error { _, err := StreamCreate(); return err },
		"StreamQuery":   func() error { _, err := StreamQuery(0); return err },
		"StreamSync":    func() error { return StreamSynchronize(0) },
		"Free":          func() error { return Free(1) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrNotLoaded) {
			t.Errorf("%s before Init: err = %v, want ErrNotLoaded", name, err)
		}
	}
}

func mapEnv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
