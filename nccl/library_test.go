package nccl

import (
	"errors"
	"path/filepath"
	"reflect"
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

func TestSearchPathsOverrideIsTriedAlone(t *testing.T) {
	env := map[string]string{EnvNCCLLibrary: "/custom/libnccl.so.2", "LD_LIBRARY_PATH": "/a"}
	got := searchPaths(ncclSpec, mapEnv(env), noGlob)
	if !reflect.DeepEqual(got, []string{"/custom/libnccl.so.2"}) {
		t.Errorf("got %v", got)
	}
}

func TestSearchPathsOrder(t *testing.T) {
	env := map[string]string{
		"LD_LIBRARY_PATH": "/a:/b::/a",
		"VIRTUAL_ENV":     "/venv",
		"PYTHONPATH":      "/pp/site-packages:/not/a/site/dir",
		"CUDA_HOME":       "/cuda",
	}
	glob := func(pattern string) ([]string, error) {
		if pattern == filepath.Join("/venv", "lib", "python3*", "site-packages") {
			return []string{"/venv/lib/python3.11/site-packages"}, nil
		}
		return nil, nil
	}
	got := searchPaths(ncclSpec, mapEnv(env), glob)
	want := []string{
		"libnccl.so.2", "libnccl.so",
		"/a/libnccl.so.2", "/a/libnccl.so",
		"/b/libnccl.so.2", "/b/libnccl.so",
		"/venv/lib/python3.11/site-packages/nvidia/nccl/lib/libnccl.so.2",
		"/venv/lib/python3.11/site-packages/nvidia/nccl/lib/libnccl.so",
		"/pp/site-packages/nvidia/nccl/lib/libnccl.so.2",
		"/pp/site-packages/nvidia/nccl/lib/libnccl.so",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("nccl search:\n got %v\nwant %v", got, want)
	}
	cud := searchPaths(cudartSpec, mapEnv(env), glob)
	for _, p := range []string{
		"/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12",
		"/cuda/lib64/libcudart.so.12",
	} {
		if !slices.Contains(cud, p) {
			t.Errorf("cudart search lacks %s: %v", p, cud)
		}
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
	for _, want := range []string{"libnccl.so.2", filepath.Join(dir, "libnccl.so.2")} {
		if !slices.Contains(paths, want) {
			t.Errorf("tried %v, lacks %s", paths, want)
		}
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

func noGlob(string) ([]string, error) { return nil, nil }
