package nccl

import (
	"os"
	"path/filepath"
	"strings"
	"unsafe"
)

// Environment variables that override the library search. When one is set,
// only that path is tried.
const (
	EnvNCCLLibrary   = "LRTRAIN_NCCL_LIBRARY"
	EnvCudartLibrary = "LRTRAIN_CUDART_LIBRARY"
)

// libSpec says how to find one library.
type libSpec struct {
	name    string   // "libnccl" or "libcudart", for messages
	env     string   // override variable
	sonames []string // newest first
	pipDirs []string // under site-packages, newest layout first
	homes   []string // variables naming an install prefix (lib64, lib under it)
}

var (
	ncclSpec = libSpec{
		name: "libnccl", env: EnvNCCLLibrary,
		sonames: []string{"libnccl.so.2", "libnccl.so"},
		// nvidia-nccl-cu12 and -cu13 both install here (CUDA 13's other
		// wheels moved to nvidia/cu13/lib; NCCL did not).
		pipDirs: []string{"nvidia/nccl/lib"},
		homes:   []string{"NCCL_HOME", "CUDA_HOME", "CUDA_PATH"},
	}
	cudartSpec = libSpec{
		name: "libcudart", env: EnvCudartLibrary,
		sonames: []string{"libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"},
		pipDirs: []string{"nvidia/cu13/lib", "nvidia/cuda_runtime/lib"},
		homes:   []string{"CUDA_HOME", "CUDA_PATH"},
	}
)

// Python installs outside any environment variable, relative to the file
// system root: Debian's and pip's system-wide directories, RHEL's lib64,
// and the conda of the PyTorch images.
var systemSitePatterns = []string{
	"usr/local/lib/python3*/dist-packages",
	"usr/local/lib/python3*/site-packages",
	"usr/lib/python3/dist-packages",
	"usr/lib/python3*/site-packages",
	"usr/lib64/python3*/site-packages",
	"opt/conda/lib/python3*/site-packages",
}

// searchPlan is where Init looks for one library, in order, after the
// override variable (alone when set), a library the process has already
// loaded under one of the sonames, and the dynamic loader's own search by
// soname: dirs, each tried with every soname, newest first.
type searchPlan struct {
	override  string   // the override variable's value, if set
	dirs      []string // candidate directories; they may not exist
	unmatched []string // glob patterns that matched no directory
}

// planSearch builds the plan from the environment. Directories, in order:
// LD_LIBRARY_PATH; pip's layouts under the site-packages of VIRTUAL_ENV,
// CONDA_PREFIX, PYTHONHOME, PYTHONPATH and the user's ~/.local; the same
// under the system-wide Python installs; conda's lib (CONDA_PREFIX,
// /opt/conda); then lib64 and lib under NCCL_HOME (libnccl), CUDA_HOME,
// CUDA_PATH and /usr/local/cuda. root is the file system root ("/"; tests use
// a fake tree), getenv and glob are parameters for the same reason.
func planSearch(spec libSpec, getenv func(string) string, glob func(string) ([]string, error), root string) searchPlan {
	if p := getenv(spec.env); p != "" {
		return searchPlan{override: p}
	}
	var plan searchPlan
	var dirs []string
	dirs = append(dirs, filepath.SplitList(getenv("LD_LIBRARY_PATH"))...)
	match := func(pattern string) []string {
		m, _ := glob(pattern)
		if len(m) == 0 {
			plan.unmatched = append(plan.unmatched, pattern)
		}
		return m
	}
	var sites []string
	for _, v := range []string{"VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME"} {
		if r := getenv(v); r != "" {
			sites = append(sites, match(filepath.Join(r, "lib", "python3*", "site-packages"))...)
			sites = append(sites, match(filepath.Join(r, "lib", "python3*", "dist-packages"))...)
		}
	}
	for _, p := range filepath.SplitList(getenv("PYTHONPATH")) {
		if strings.HasSuffix(p, "site-packages") || strings.HasSuffix(p, "dist-packages") {
			sites = append(sites, p)
		}
	}
	if h := getenv("HOME"); h != "" {
		sites = append(sites, match(filepath.Join(h, ".local", "lib", "python3*", "site-packages"))...)
	}
	for _, pat := range systemSitePatterns {
		sites = append(sites, match(filepath.Join(root, pat))...)
	}
	for _, sp := range sites {
		for _, sub := range spec.pipDirs {
			dirs = append(dirs, filepath.Join(sp, filepath.FromSlash(sub)))
		}
	}
	if c := getenv("CONDA_PREFIX"); c != "" {
		dirs = append(dirs, filepath.Join(c, "lib"))
	}
	dirs = append(dirs, filepath.Join(root, "opt", "conda", "lib"))
	var homes []string
	for _, v := range spec.homes {
		if h := getenv(v); h != "" {
			homes = append(homes, h)
		}
	}
	for _, h := range append(homes, filepath.Join(root, "usr", "local", "cuda")) {
		dirs = append(dirs, filepath.Join(h, "lib64"), filepath.Join(h, "lib"))
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		d = filepath.Clean(d)
		if !seen[d] {
			seen[d] = true
			plan.dirs = append(plan.dirs, d)
		}
	}
	return plan
}

// files returns, in search order, every sonamed file that exists in the
// plan's directories, and the directories that hold none.
func (p searchPlan) files(spec libSpec) (found, empty []string) {
	for _, d := range p.dirs {
		n := len(found)
		for _, so := range spec.sonames {
			path := filepath.Join(d, so)
			if st, err := os.Stat(path); err == nil && !st.IsDir() {
				found = append(found, path)
			}
		}
		if len(found) == n {
			empty = append(empty, d)
		}
	}
	return found, empty
}

// open loads the library: the override alone if set; otherwise a copy the
// process has already loaded (libtorch_cuda's libcudart, say: the same
// runtime as torch), then each soname through the dynamic loader, then each
// file of the plan. It returns the handle and the file it came from, or a
// *LoadError naming every place it looked.
func (p searchPlan) open(spec libSpec) (unsafe.Pointer, string, error) {
	le := &LoadError{Library: spec.name, Env: spec.env, Sonames: spec.sonames}
	try := func(path string) unsafe.Pointer {
		h, msg := dlOpen(path)
		if h == nil {
			le.Tried = append(le.Tried, Attempt{Path: path, DLError: msg})
		}
		return h
	}
	if p.override != "" {
		le.Overridden = true
		if h := try(p.override); h != nil {
			return h, p.override, nil
		}
		return nil, "", le
	}
	for _, so := range spec.sonames {
		if h, path := dlOpenLoaded(so); h != nil {
			return h, path, nil
		}
	}
	for _, so := range spec.sonames {
		if h := try(so); h != nil {
			return h, so, nil
		}
	}
	found, empty := p.files(spec)
	for _, path := range found {
		if h := try(path); h != nil {
			return h, path, nil
		}
	}
	le.Empty, le.Unmatched = empty, p.unmatched
	return nil, "", le
}
