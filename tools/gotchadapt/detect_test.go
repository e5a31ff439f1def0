package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wantFlags checks that every wanted flag is in got and no unwanted one is.
func wantFlags(t *testing.T, what string, got []string, want, not []string) {
	t.Helper()
	joined := " " + strings.Join(got, " ") + " "
	for _, w := range want {
		if !strings.Contains(joined, " "+w+" ") {
			t.Errorf("%s lacks %q: %s", what, w, joined)
		}
	}
	for _, n := range not {
		if strings.Contains(joined, n) {
			t.Errorf("%s must not contain %q: %s", what, n, joined)
		}
	}
}

// A pip wheel up to 2.5 (old C++ ABI), found by asking the real python3 where
// torch is, with its CUDA 12 runtime in site-packages/nvidia.
func TestDetectPipTorchOldABIWithCUDA(t *testing.T) {
	if testing.Short() {
		t.Skip("long: compiles fake libtorch libraries; runs without -short")
	}
	site := t.TempDir()
	torch := filepath.Join(site, "torch")
	writeFile(t, filepath.Join(torch, "__init__.py"), "raise ImportError('detection must not import torch')\n")
	fakeTree{include: filepath.Join(torch, "include"), lib: filepath.Join(torch, "lib"),
		version: [3]int{2, 5, 1}, abi: 0, cuda: true}.write(t)
	nv := filepath.Join(site, "nvidia")
	writeFile(t, filepath.Join(nv, "cuda_runtime/include/cuda_runtime_api.h"), "")
	writeFile(t, filepath.Join(nv, "cublas/include/cublas_v2.h"), "")
	sharedLib(t, filepath.Join(nv, "cuda_runtime/lib"), "libcudart.so.12", -1)
	sys := t.TempDir() // Debian's libtorch-dev too: pip's must win

	py, env := pythonWith(t, site)
	fakeTree{include: filepath.Join(sys, "include"), lib: filepath.Join(sys, "lib"), version: [3]int{1, 13, 0}, abi: 1}.write(t)
	lt, err := detectLibtorch(detectEnv{python: py, pythonEnv: env, sysInclude: filepath.Join(sys, "include"),
		sysLib: filepath.Join(sys, "lib"), cudaHome: filepath.Join(site, "no-toolkit")})
	if err != nil {
		t.Fatal(err)
	}
	if lt.Source != sourcePip || lt.Version != "2.5.1" || lt.CXX11ABI || !lt.CUDA || lt.std() != "c++17" {
		t.Fatalf("detected %+v, want pip 2.5.1, old ABI, CUDA, c++17", lt)
	}
	inc, lib := filepath.Join(torch, "include"), filepath.Join(torch, "lib")
	wantFlags(t, "CXX flags", lt.cxxFlags(),
		[]string{"-std=c++17", "-D_GLIBCXX_USE_CXX11_ABI=0", "-I" + inc, "-I" + inc + "/torch/csrc/api/include"},
		[]string{"ABI=1", sys})
	wantFlags(t, "LD flags", lt.ldFlags(),
		[]string{"-L" + lib, "-Wl,-rpath," + lib, "-Wl,--push-state,--no-as-needed -ltorch -ltorch_cpu -lc10 -ltorch_cuda -lc10_cuda -Wl,--pop-state"},
		[]string{sys})
	wantFlags(t, "CUDA CXX flags", lt.cudaCXXFlags(),
		[]string{"-I" + nv + "/cublas/include", "-I" + nv + "/cuda_runtime/include"}, nil)
	rt := filepath.Join(nv, "cuda_runtime/lib")
	wantFlags(t, "CUDA LD flags", lt.cudaLDFlags(), []string{"-L" + rt, "-Wl,-rpath," + rt, "-l:libcudart.so.12"}, nil)

	src := lt.phiopGo()
	for _, want := range []string{"package phiop", "// #cgo CXXFLAGS: " + strings.Join(lt.cxxFlags(), " ") + "\n",
		"// #cgo LDFLAGS: " + strings.Join(lt.ldFlags(), " ") + "\n",
		"// #cgo cuda LDFLAGS: " + strings.Join(lt.cudaLDFlags(), " ") + "\n", "import \"C\"\n"} {
		if !strings.Contains(src, want) {
			t.Errorf("phiop's flags file lacks %q:\n%s", want, src)
		}
	}
	if lib := lt.libGo(); !strings.Contains(lib, "-ltorch_cuda") || strings.Contains(lib, "cudart") {
		t.Errorf("gotch links libtorch_cuda and no CUDA runtime (its C++ calls none):\n%s", lib)
	}
}

// A CUDA 13 wheel: the runtime lives in nvidia/cu13, a C++20 guard in the
// headers raises the standard, and torch/version.h forwards to
// torch/headeronly/version.h for the version macros.
func TestDetectPipTorchCUDA13NewABICXX20(t *testing.T) {
	if testing.Short() {
		t.Skip("long: compiles fake libtorch libraries; runs without -short")
	}
	site := t.TempDir()
	torch := filepath.Join(site, "torch")
	writeFile(t, filepath.Join(torch, "__init__.py"), "")
	fakeTree{include: filepath.Join(torch, "include"), lib: filepath.Join(torch, "lib"),
		version: [3]int{2, 11, 0}, abi: 1, cuda: true, stdGuard: "202002L", forwarded: true}.write(t)
	cu13 := filepath.Join(site, "nvidia/cu13")
	writeFile(t, filepath.Join(cu13, "include/cuda_runtime_api.h"), "")
	sharedLib(t, filepath.Join(cu13, "lib"), "libcudart.so.13", -1)
	py, env := pythonWith(t, site)
	lt, err := detectLibtorch(detectEnv{python: py, pythonEnv: env, sysInclude: t.TempDir(), sysLib: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if lt.Version != "2.11.0" || !lt.CXX11ABI || lt.std() != "c++20" {
		t.Fatalf("detected %+v, want 2.11.0, new ABI, c++20", lt)
	}
	wantFlags(t, "CXX flags", lt.cxxFlags(), []string{"-std=c++20", "-D_GLIBCXX_USE_CXX11_ABI=1"}, []string{"c++17"})
	wantFlags(t, "CUDA flags", append(lt.cudaCXXFlags(), lt.cudaLDFlags()...),
		[]string{"-I" + cu13 + "/include", "-L" + cu13 + "/lib", "-l:libcudart.so.13"}, nil)
}

// An unpacked libtorch zip named by LIBTORCH wins over pip's torch; its CUDA
// runtime comes from the toolkit in CUDA_HOME.
func TestDetectLibtorchZipWithToolkit(t *testing.T) {
	if testing.Short() {
		t.Skip("long: compiles fake libtorch libraries; runs without -short")
	}
	zip := t.TempDir()
	fakeTree{include: filepath.Join(zip, "include"), lib: filepath.Join(zip, "lib"), version: [3]int{2, 1, 2}, abi: 1, cuda: true}.write(t)
	cudaHome := t.TempDir()
	writeFile(t, filepath.Join(cudaHome, "include/cuda_runtime_api.h"), "")
	sharedLib(t, filepath.Join(cudaHome, "lib64"), "libcudart.so", -1)
	site := t.TempDir()
	writeFile(t, filepath.Join(site, "torch/__init__.py"), "")
	fakeTree{include: filepath.Join(site, "torch/include"), lib: filepath.Join(site, "torch/lib"), version: [3]int{2, 6, 0}, abi: 1}.write(t)
	py, env := pythonWith(t, site)

	lt, err := detectLibtorch(detectEnv{libtorchDir: zip, python: py, pythonEnv: env, sysInclude: t.TempDir(), sysLib: t.TempDir(), cudaHome: cudaHome})
	if err != nil {
		t.Fatal(err)
	}
	if lt.Source != sourceEnv || lt.Version != "2.1.2" || !lt.isTarget() {
		t.Fatalf("detected %+v, want LIBTORCH's 2.1.2", lt)
	}
	wantFlags(t, "flags", append(lt.cxxFlags(), lt.ldFlags()...),
		[]string{"-I" + zip + "/include", "-L" + zip + "/lib", "-Wl,-rpath," + zip + "/lib", "-D_GLIBCXX_USE_CXX11_ABI=1"}, []string{site})
	wantFlags(t, "CUDA flags", append(lt.cudaCXXFlags(), lt.cudaLDFlags()...),
		[]string{"-I" + cudaHome + "/include", "-L" + cudaHome + "/lib64", "-lcudart"}, nil)

	// A LIBTORCH without libraries is an error naming the variable and the file.
	bad := t.TempDir()
	fakeTree{include: filepath.Join(bad, "include"), lib: filepath.Join(t.TempDir(), "elsewhere"), version: [3]int{2, 1, 0}, abi: 1}.write(t)
	_, err = detectLibtorch(detectEnv{libtorchDir: bad, python: py, pythonEnv: env})
	if err == nil || !strings.Contains(err.Error(), "LIBTORCH="+bad) || !strings.Contains(err.Error(), filepath.Join(bad, "lib", "libtorch_cpu.so")) {
		t.Fatalf("error %v must name LIBTORCH and the missing library", err)
	}
}

// Debian's libtorch-dev (python3 without torch): headers and libraries on the
// default paths, so no -I of the include root and no -L.
func TestDetectDebianLibtorch(t *testing.T) {
	sys := t.TempDir()
	inc, lib := filepath.Join(sys, "usr/include"), filepath.Join(sys, "usr/lib/x86_64-linux-gnu")
	fakeTree{include: inc, lib: lib, version: [3]int{1, 13, 0}, abi: 1, stdGuard: "201402L"}.write(t)
	lt, err := detectLibtorch(detectEnv{python: noTorchPython(t), sysInclude: inc, sysLib: lib, cudaHome: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if lt.Source != sourceDebian || lt.Version != "1.13.0" || !lt.CXX11ABI || lt.CUDA || lt.std() != "c++17" {
		t.Fatalf("detected %+v, want Debian's 1.13.0, new ABI, CPU, c++17 (1.13 accepts C++14; lrtrain needs 17)", lt)
	}
	wantFlags(t, "flags", append(lt.cxxFlags(), lt.ldFlags()...),
		[]string{"-std=c++17", "-D_GLIBCXX_USE_CXX11_ABI=1", "-I" + inc + "/torch/csrc/api/include",
			"-Wl,--push-state,--no-as-needed -ltorch -ltorch_cpu -lc10 -Wl,--pop-state"},
		[]string{"-I" + inc + " ", "-L", "rpath", "cuda"})
	if s := lt.phiopGo(); strings.Contains(s, "#cgo cuda") {
		t.Errorf("a CPU libtorch gives phiop no CUDA flags:\n%s", s)
	}
}

// With nothing installed the error names every place looked.
func TestDetectNothingNamesEveryPlace(t *testing.T) {
	sys := t.TempDir()
	_, err := detectLibtorch(detectEnv{python: noTorchPython(t), sysInclude: filepath.Join(sys, "include"), sysLib: filepath.Join(sys, "lib")})
	if err == nil {
		t.Fatal("no libtorch must be an error")
	}
	for _, want := range []string{"no torch package", filepath.Join(sys, "include/torch/csrc/api/include/torch/version.h"), "LIBTORCH", "libtorch-dev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestRequiredYearNeedsAnError(t *testing.T) {
	for _, c := range []struct {
		src  string
		want int
	}{
		{"#if !defined(_MSC_VER) && __cplusplus < 201703L\n#error C++17 or later\n#endif\n", 2017},
		{"#if __cplusplus < 202002L\n  #error \"C++20 needed\"\n#endif\n", 2020},
		{"#if __cplusplus < 202002L\n#define POLYFILL 1\n#endif\n", 0},
		{"#if __cplusplus < 201402L\n#error old\n#endif\n#if __cplusplus < 202002L\n#include <x>\n#endif\n", 2014},
	} {
		if got := requiredYear(c.src); got != c.want {
			t.Errorf("requiredYear(%q) = %d, want %d", c.src, got, c.want)
		}
	}
}

// Debian's python3-torch is a torch package whose include/ and lib/ are symlinks
// into libtorch-dev: python3 finds it, and it is recognised as Debian's.
func TestDetectDebianPython3Torch(t *testing.T) {
	if testing.Short() {
		t.Skip("long: compiles fake libtorch libraries; runs without -short")
	}
	root := t.TempDir()
	inc, lib := filepath.Join(root, "usr/include"), filepath.Join(root, "usr/lib/x86_64-linux-gnu")
	fakeTree{include: inc, lib: lib, version: [3]int{2, 6, 0}, abi: 1}.write(t)
	site := filepath.Join(root, "usr/lib/python3/dist-packages")
	torch := filepath.Join(site, "torch")
	writeFile(t, filepath.Join(torch, "__init__.py"), "")
	for _, l := range []struct{ link, target string }{
		{"include/torch", "../../../../../include/torch"},
		{"include/c10", "../../../../../include/c10"},
		{"lib/libtorch_cpu.so", "../../../../x86_64-linux-gnu/libtorch_cpu.so"},
		{"lib/libc10.so", "../../../../x86_64-linux-gnu/libc10.so"},
	} {
		p := filepath.Join(torch, l.link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(l.target, p); err != nil {
			t.Fatal(err)
		}
	}
	py, env := pythonWith(t, site)
	lt, err := detectLibtorch(detectEnv{python: py, pythonEnv: env, sysInclude: inc, sysLib: lib})
	if err != nil {
		t.Fatal(err)
	}
	if lt.Source != sourceDebian || lt.Include != inc || lt.Lib != lib || lt.Version != "2.6.0" {
		t.Fatalf("detected %+v, want Debian's 2.6.0 at %s, %s", lt, inc, lib)
	}
	wantFlags(t, "flags", lt.ldFlags(), nil, []string{"-L", "rpath", site})
}
