package nccl

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeTree creates each file (a path relative to root, "/"-separated) as a
// small non-ELF file: present for the search, unloadable by dlopen.
func fakeTree(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not a shared object\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// rootedEnv maps variables to paths under root ("" stays unset).
func rootedEnv(root string, vars map[string]string) func(string) string {
	return func(k string) string {
		v, ok := vars[k]
		if !ok || v == "" {
			return ""
		}
		var parts []string
		for _, p := range filepath.SplitList(v) {
			parts = append(parts, filepath.Join(root, p))
		}
		return strings.Join(parts, string(filepath.ListSeparator))
	}
}

// firstFile is the file the search would open first, relative to root.
func firstFile(t *testing.T, spec libSpec, root string, vars map[string]string) string {
	t.Helper()
	found, _ := planSearch(spec, rootedEnv(root, vars), filepath.Glob, root).files(spec)
	if len(found) == 0 {
		return ""
	}
	rel, err := filepath.Rel(root, found[0])
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(rel)
}

// Each install layout is found on its own, and within one place the newest
// soname wins: CUDA 13 pip (nvidia/cu13/lib) before CUDA 12 (cuda_runtime).
func TestSearchFindsEveryLayout(t *testing.T) {
	const sp = "lib/python3.11/site-packages"
	cases := []struct {
		name  string
		spec  libSpec
		vars  map[string]string
		files []string
		want  string
	}{
		{"pip CUDA 12 in a venv", cudartSpec, map[string]string{"VIRTUAL_ENV": "/venv"},
			[]string{"venv/" + sp + "/nvidia/cuda_runtime/lib/libcudart.so.12"}, "venv/" + sp + "/nvidia/cuda_runtime/lib/libcudart.so.12"},
		{"pip CUDA 13 in a venv", cudartSpec, map[string]string{"VIRTUAL_ENV": "/venv"},
			[]string{"venv/" + sp + "/nvidia/cu13/lib/libcudart.so.13"}, "venv/" + sp + "/nvidia/cu13/lib/libcudart.so.13"},
		{"pip CUDA 12 and 13 side by side", cudartSpec, map[string]string{"VIRTUAL_ENV": "/venv"},
			[]string{"venv/" + sp + "/nvidia/cuda_runtime/lib/libcudart.so.12", "venv/" + sp + "/nvidia/cu13/lib/libcudart.so.13"},
			"venv/" + sp + "/nvidia/cu13/lib/libcudart.so.13"},
		{"newest soname in one directory", cudartSpec, map[string]string{"CUDA_HOME": "/cuda"},
			[]string{"cuda/lib64/libcudart.so", "cuda/lib64/libcudart.so.12", "cuda/lib64/libcudart.so.13"}, "cuda/lib64/libcudart.so.13"},
		{"pip NCCL (cu12 and cu13 wheels)", ncclSpec, map[string]string{"VIRTUAL_ENV": "/venv"},
			[]string{"venv/" + sp + "/nvidia/nccl/lib/libnccl.so.2"}, "venv/" + sp + "/nvidia/nccl/lib/libnccl.so.2"},
		{"conda's lib", ncclSpec, map[string]string{"CONDA_PREFIX": "/conda"},
			[]string{"conda/lib/libnccl.so.2"}, "conda/lib/libnccl.so.2"},
		{"pip inside conda", cudartSpec, map[string]string{"CONDA_PREFIX": "/conda"},
			[]string{"conda/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13"},
			"conda/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13"},
		{"the PyTorch image's /opt/conda", cudartSpec, nil,
			[]string{"opt/conda/lib/libcudart.so.12"}, "opt/conda/lib/libcudart.so.12"},
		{"system pip, Debian", ncclSpec, nil,
			[]string{"usr/lib/python3/dist-packages/nvidia/nccl/lib/libnccl.so.2"}, "usr/lib/python3/dist-packages/nvidia/nccl/lib/libnccl.so.2"},
		{"system pip, /usr/local", cudartSpec, nil,
			[]string{"usr/local/lib/python3.11/dist-packages/nvidia/cuda_runtime/lib/libcudart.so.12"},
			"usr/local/lib/python3.11/dist-packages/nvidia/cuda_runtime/lib/libcudart.so.12"},
		{"system pip, /usr/lib/python3.X", cudartSpec, nil,
			[]string{"usr/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13"},
			"usr/lib/python3.12/site-packages/nvidia/cu13/lib/libcudart.so.13"},
		{"user pip (~/.local)", ncclSpec, map[string]string{"HOME": "/home/u"},
			[]string{"home/u/.local/" + sp + "/nvidia/nccl/lib/libnccl.so.2"}, "home/u/.local/" + sp + "/nvidia/nccl/lib/libnccl.so.2"},
		{"PYTHONPATH", ncclSpec, map[string]string{"PYTHONPATH": "/pp/site-packages"},
			[]string{"pp/site-packages/nvidia/nccl/lib/libnccl.so.2"}, "pp/site-packages/nvidia/nccl/lib/libnccl.so.2"},
		{"CUDA_HOME/lib64", cudartSpec, map[string]string{"CUDA_HOME": "/opt/cuda-12.4"},
			[]string{"opt/cuda-12.4/lib64/libcudart.so.12"}, "opt/cuda-12.4/lib64/libcudart.so.12"},
		{"/usr/local/cuda without CUDA_HOME", cudartSpec, nil,
			[]string{"usr/local/cuda/lib64/libcudart.so.12"}, "usr/local/cuda/lib64/libcudart.so.12"},
		{"NCCL_HOME", ncclSpec, map[string]string{"NCCL_HOME": "/opt/nccl"},
			[]string{"opt/nccl/lib/libnccl.so.2"}, "opt/nccl/lib/libnccl.so.2"},
		{"LD_LIBRARY_PATH", ncclSpec, map[string]string{"LD_LIBRARY_PATH": "/x:/y"},
			[]string{"y/libnccl.so"}, "y/libnccl.so"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			fakeTree(t, root, c.files...)
			if got := firstFile(t, c.spec, root, c.vars); got != c.want {
				t.Errorf("found %q first, want %q", got, c.want)
			}
		})
	}
}

// With every place populated, the order is: LD_LIBRARY_PATH, the Python
// environments the variables name, the user's, the system's, conda's lib,
// then the CUDA installs.
func TestSearchOrder(t *testing.T) {
	root := t.TempDir()
	files := []string{
		"cuda/lib64/libcudart.so.13",
		"opt/conda/lib/libcudart.so.13",
		"conda/lib/libcudart.so.13",
		"usr/lib/python3/dist-packages/nvidia/cu13/lib/libcudart.so.13",
		"home/u/.local/lib/python3.11/site-packages/nvidia/cu13/lib/libcudart.so.13",
		"venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12",
		"venv/lib/python3.11/site-packages/nvidia/cu13/lib/libcudart.so.13",
		"ld/libcudart.so.12",
	}
	fakeTree(t, root, files...)
	vars := map[string]string{"LD_LIBRARY_PATH": "/ld", "VIRTUAL_ENV": "/venv", "HOME": "/home/u",
		"CONDA_PREFIX": "/conda", "CUDA_HOME": "/cuda"}
	found, _ := planSearch(cudartSpec, rootedEnv(root, vars), filepath.Glob, root).files(cudartSpec)
	var got []string
	for _, f := range found {
		rel, _ := filepath.Rel(root, f)
		got = append(got, filepath.ToSlash(rel))
	}
	want := []string{files[7], files[6], files[5], files[4], files[3], files[2], files[1], files[0]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("search order:\n got %v\nwant %v", got, want)
	}
}

// A search that finds nothing it can open names every place it looked:
// the sonames, every directory, every pattern that matched nothing, and the
// file that was there but did not open, with dlopen's reason.
func TestSearchFailureNamesEveryPlace(t *testing.T) {
	spec := libSpec{name: "libabsent", env: "LRTRAIN_ABSENT_LIBRARY",
		sonames: []string{"liblrtrain-absent.so.13", "liblrtrain-absent.so.12"},
		pipDirs: []string{"nvidia/cu13/lib", "nvidia/absent/lib"}, homes: []string{"CUDA_HOME"}}
	root := t.TempDir()
	broken := "venv/lib/python3.11/site-packages/nvidia/absent/lib/liblrtrain-absent.so.12"
	fakeTree(t, root, broken)
	vars := map[string]string{"LD_LIBRARY_PATH": "/ld", "VIRTUAL_ENV": "/venv", "HOME": "/home/u", "CUDA_HOME": "/cuda"}
	plan := planSearch(spec, rootedEnv(root, vars), filepath.Glob, root)
	_, _, err := plan.open(spec)
	le, ok := err.(*LoadError)
	if !ok {
		t.Fatalf("open = %v, want a *LoadError", err)
	}
	msg := err.Error()
	must := append([]string{}, spec.sonames...)
	must = append(must, spec.env, "ld.so.cache", filepath.Join(root, broken)+" (")
	for _, d := range plan.dirs {
		if d != filepath.Dir(filepath.Join(root, broken)) {
			must = append(must, d)
		}
	}
	must = append(must, plan.unmatched...)
	for _, pat := range []string{"usr/lib/python3*/site-packages", "home/u/.local/lib/python3*/site-packages"} {
		must = append(must, filepath.Join(root, pat))
	}
	for _, s := range must {
		if !strings.Contains(msg, s) {
			t.Errorf("message lacks %q:\n%s", s, msg)
		}
	}
	if len(le.Empty) != len(plan.dirs)-1 {
		t.Errorf("%d empty directories of %d searched, want all but the broken file's", len(le.Empty), len(plan.dirs))
	}
	if len(le.Tried) != len(spec.sonames)+1 || le.Tried[len(le.Tried)-1].DLError == "" {
		t.Errorf("tried %v, want both sonames and the broken file with its dlopen error", le.Tried)
	}
}

// The override variable names the only path tried, and the message says so.
func TestSearchOverrideIsTriedAlone(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libnccl.so.2")
	env := map[string]string{EnvNCCLLibrary: missing, "LD_LIBRARY_PATH": "/a", "CUDA_HOME": "/cuda"}
	plan := planSearch(ncclSpec, mapEnv(env), filepath.Glob, "/")
	if plan.override != missing || len(plan.dirs) != 0 {
		t.Fatalf("plan = %+v, want the override alone", plan)
	}
	_, _, err := plan.open(ncclSpec)
	le, ok := err.(*LoadError)
	if !ok || !le.Overridden || len(le.Tried) != 1 || le.Tried[0].Path != missing {
		t.Fatalf("open = %#v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, EnvNCCLLibrary) || !strings.Contains(msg, missing) {
		t.Errorf("message %q lacks the variable or the path", msg)
	}
}

// A library the process has already loaded under a searched soname (as
// libtorch_cuda loads libcudart) is used before anything else: the same
// runtime as torch, even where a newer soname exists elsewhere.
func TestSearchPrefersTheLoadedLibrary(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Fatalf("a C compiler is needed to build the test library: %v", err)
	}
	dir := t.TempDir()
	lib := filepath.Join(dir, "liblrtrain-loaded.so.12")
	cmd := exec.Command(cc, "-shared", "-fPIC", "-Wl,-soname,liblrtrain-loaded.so.12", "-x", "c", "-o", lib, "-")
	cmd.Stdin = strings.NewReader("int lrtrain_loaded_marker(void) { return 12; }\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", lib, err, out)
	}
	spec := libSpec{name: "libloaded", env: "LRTRAIN_LOADED_LIBRARY",
		sonames: []string{"liblrtrain-loaded.so.13", "liblrtrain-loaded.so.12"}}
	root := t.TempDir()
	fakeTree(t, root, "ld/liblrtrain-loaded.so.13")
	plan := planSearch(spec, rootedEnv(root, map[string]string{"LD_LIBRARY_PATH": "/ld"}), filepath.Glob, root)
	if _, _, err := plan.open(spec); err == nil {
		t.Fatal("nothing loaded yet: the search must fail (the .so.13 file is not a library)")
	}
	held, msg := dlOpen(lib)
	if held == nil {
		t.Fatalf("dlopen %s: %s", lib, msg)
	}
	defer dlClose(held)
	h, path, err := plan.open(spec)
	if err != nil {
		t.Fatalf("with the library loaded: %v", err)
	}
	defer dlClose(h)
	if path != lib || h != held {
		t.Errorf("opened %s (handle %p), want the loaded %s (handle %p)", path, h, lib, held)
	}
}
