package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// libtorch describes the libtorch to build against (detect.go finds it): where its
// headers and libraries are, its version, C++ ABI and standard, and for a CUDA
// libtorch where the CUDA runtime is. One value drives gotch's cgo flags
// (libtch/lib.go) and phiop's (phiopFlagsFile).
type libtorch struct {
	Source   string // sourceEnv, sourcePip or sourceDebian
	Version  string // "1.13.0"
	Include  string // dir holding torch/csrc/api/include
	Lib      string // dir holding libtorch_cpu.so
	CXX11ABI bool   // libstdc++'s new string ABI
	CXXStd   string // "c++17"
	CUDA     bool   // libtorch_cuda.so is there

	CUDAHeaders bool     // the CUDA runtime headers were found
	CUDAInclude []string // their dirs (none: the compiler's default paths)
	CUDARTDir   string   // dir of libcudart ("" with CUDART: a default dir)
	CUDART      string   // -l name: "cudart" or ":libcudart.so.12"; "" not found
	CUDALooked  []string // where the CUDA runtime was looked for and not found
}

// targetVersion is the libtorch that gotch's generated wrappers were written for.
const targetVersion = "2.1"

// isTarget reports whether gotch's generated code matches this libtorch exactly,
// in which case nothing needs stubbing.
func (lt libtorch) isTarget() bool { return strings.HasPrefix(lt.Version, targetVersion+".") }

var versionRE = regexp.MustCompile(`TORCH_VERSION_(MAJOR|MINOR|PATCH)\s+(\d+)`)

// versionIncludeRE finds the header a forwarding version.h includes: from libtorch
// 2.9 on, torch/version.h holds only `#include <torch/headeronly/version.h>`, and
// the TORCH_VERSION_* macros are there.
var versionIncludeRE = regexp.MustCompile(`(?m)^\s*#\s*include\s*[<"](torch/[^>"]*version\.h)[>"]`)

// readTorchVersion reads libtorch's version from path, following the headers a
// forwarding version.h includes (at most two hops), each looked up under include
// and under include/torch/csrc/api/include as the compiler would.
func readTorchVersion(include, path string) (string, error) {
	for hop := 0; ; hop++ {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("no %s", path)
		}
		v, err := parseTorchVersion(string(b))
		if err == nil {
			return v, nil
		}
		m := versionIncludeRE.FindStringSubmatch(string(b))
		if m == nil || hop == 2 {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		next := ""
		for _, dir := range []string{include, filepath.Join(include, "torch/csrc/api/include")} {
			if c := filepath.Join(dir, m[1]); c != path && fileExists(c) {
				next = c
				break
			}
		}
		if next == "" {
			return "", fmt.Errorf("%s: %w, and the %s it includes is not under %s", path, err, m[1], include)
		}
		path = next
	}
}

func parseTorchVersion(h string) (string, error) {
	parts := map[string]string{}
	for _, m := range versionRE.FindAllStringSubmatch(h, -1) {
		parts[m[1]] = m[2]
	}
	if parts["MAJOR"] == "" || parts["MINOR"] == "" {
		return "", fmt.Errorf("no TORCH_VERSION_MAJOR/MINOR")
	}
	if parts["PATCH"] == "" {
		parts["PATCH"] = "0"
	}
	return parts["MAJOR"] + "." + parts["MINOR"] + "." + parts["PATCH"], nil
}

func (lt libtorch) abiFlag() string {
	if lt.CXX11ABI {
		return "-D_GLIBCXX_USE_CXX11_ABI=1"
	}
	return "-D_GLIBCXX_USE_CXX11_ABI=0"
}

func (lt libtorch) std() string {
	if lt.CXXStd == "" {
		return "c++17"
	}
	return lt.CXXStd
}

// system reports whether the headers and libraries are on the compiler's and
// linker's default paths (Debian's), so no -I/-L/rpath is needed for them.
func (lt libtorch) system() bool { return lt.Source == sourceDebian }

// cxxFlags compiles C++ against libtorch (no CUDA headers: cudaCXXFlags).
func (lt libtorch) cxxFlags() []string {
	f := []string{"-std=" + lt.std(), lt.abiFlag()}
	if !lt.system() {
		f = append(f, "-I"+lt.Include)
	}
	return append(f, "-I"+filepath.Join(lt.Include, "torch/csrc/api/include"))
}

// cudaCXXFlags adds the CUDA runtime headers, for code that includes ATen's or
// c10's CUDA headers.
func (lt libtorch) cudaCXXFlags() []string {
	var f []string
	for _, d := range lt.CUDAInclude {
		f = append(f, "-I"+d)
	}
	return f
}

// ldFlags links libtorch. The libraries are kept in the binary's NEEDED entries
// whether or not anything references them (--no-as-needed): gcc links with
// --as-needed by default on Debian and Ubuntu, nothing calls into libtorch_cuda
// directly (its static initialisers register CUDA with libtorch_cpu), and without
// it torch::cuda::is_available() is false and `train.device: auto` trains on the CPU.
func (lt libtorch) ldFlags() []string {
	var f []string
	if !lt.system() {
		f = append(f, "-L"+lt.Lib, "-Wl,-rpath,"+lt.Lib)
	}
	f = append(f, "-Wl,--push-state,--no-as-needed", "-ltorch", "-ltorch_cpu", "-lc10")
	if lt.CUDA {
		f = append(f, "-ltorch_cuda", "-lc10_cuda")
	}
	return append(f, "-Wl,--pop-state", "-lstdc++")
}

// cudaLDFlags links the CUDA runtime, for code that calls it (phiop's kernels).
func (lt libtorch) cudaLDFlags() []string {
	if lt.CUDART == "" {
		return nil
	}
	var f []string
	if lt.CUDARTDir != "" {
		f = append(f, "-L"+lt.CUDARTDir, "-Wl,-rpath,"+lt.CUDARTDir)
	}
	return append(f, "-l"+lt.CUDART)
}

// describe is the one-line summary setup prints.
func (lt libtorch) describe() string {
	abi := "new (cxx11)"
	if !lt.CXX11ABI {
		abi = "old (pre-cxx11)"
	}
	s := fmt.Sprintf("libtorch %s from %s (%s, %s): C++ ABI %s, -std=%s, cuda=%t",
		lt.Version, lt.Source, lt.Include, lt.Lib, abi, lt.std(), lt.CUDA)
	if lt.CUDA && (lt.CUDART == "" || !lt.CUDAHeaders) {
		s += fmt.Sprintf("; no CUDA runtime for make build-cuda (looked at %s; set CUDA_HOME)", strings.Join(lt.CUDALooked, ", "))
	}
	return s
}

// canBuildCUDA says why `make build-cuda` cannot work with this libtorch.
func (lt libtorch) canBuildCUDA() error {
	switch {
	case !lt.CUDA:
		return fmt.Errorf("a CUDA build needs a CUDA libtorch, found %s (no %s); set LIBTORCH or install a CUDA torch with pip",
			lt.describeShort(), filepath.Join(lt.Lib, "libtorch_cuda.so"))
	case lt.CUDART == "" || !lt.CUDAHeaders:
		return fmt.Errorf("%s: no CUDA runtime (looked at %s); set CUDA_HOME to the CUDA toolkit",
			lt.describeShort(), strings.Join(lt.CUDALooked, ", "))
	}
	return nil
}

// libGo is the replacement for gotch's libtch/lib.go: the same package, cgo
// flags for this libtorch instead of the hard-coded CUDA 12 ones. gotch's C++
// includes no CUDA header and calls no CUDA runtime function.
func (lt libtorch) libGo() string {
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by lrtrain's tools/gotchadapt for %s. DO NOT EDIT.\n\npackage libtch\n\n", lt.describeShort())
	fmt.Fprintf(&b, "// #cgo LDFLAGS: %s\n", strings.Join(lt.ldFlags(), " "))
	fmt.Fprintf(&b, "// #cgo CFLAGS: -I${SRCDIR} -O3 -Wall -Wno-unused-variable -Wno-deprecated-declarations -Wno-c++11-narrowing -Wno-sign-compare -Wno-unused-function %s\n", lt.abiFlag())
	fmt.Fprintf(&b, "// #cgo CXXFLAGS: -I${SRCDIR} -O2 %s\n", strings.Join(lt.cxxFlags(), " "))
	b.WriteString("import \"C\"\n")
	return b.String()
}

func (lt libtorch) describeShort() string {
	return fmt.Sprintf("libtorch %s (%s, cuda=%t)", lt.Version, lt.Source, lt.CUDA)
}

// phiopFlagsFile is the file phiop's libtorch flags live in: generated, ignored
// by git, so that phiop compiles against the libtorch gotch does (cgo puts
// CGO_CXXFLAGS before a package's #cgo flags, so the environment cannot override
// flags written in the source).
const phiopFlagsFile = "phiop/cgo_libtorch.go"

// phiopGo is phiop's generated cgo flags file. The `cuda` build tag adds the
// CUDA runtime (phiop's CUDA shim includes c10/cuda headers; its kernels call
// libcudart).
func (lt libtorch) phiopGo() string {
	var b strings.Builder
	fmt.Fprintf(&b, "// Code generated by tools/gotchadapt (make setup) for %s. DO NOT EDIT.\n\npackage phiop\n\n", lt.describeShort())
	fmt.Fprintf(&b, "// #cgo CXXFLAGS: %s\n", strings.Join(lt.cxxFlags(), " "))
	fmt.Fprintf(&b, "// #cgo LDFLAGS: %s\n", strings.Join(lt.ldFlags(), " "))
	if f := lt.cudaCXXFlags(); len(f) > 0 {
		fmt.Fprintf(&b, "// #cgo cuda CXXFLAGS: %s\n", strings.Join(f, " "))
	}
	if f := lt.cudaLDFlags(); len(f) > 0 {
		fmt.Fprintf(&b, "// #cgo cuda LDFLAGS: %s\n", strings.Join(f, " "))
	}
	b.WriteString("import \"C\"\n")
	return b.String()
}
