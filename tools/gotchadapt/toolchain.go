package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The headers that state the oldest C++ standard libtorch accepts, each with an
// `#if __cplusplus < N` ... `#error` guard: torch/all.h (1.13: C++14, 2.x: C++17)
// and the c10 macro headers, where a newer libtorch moves the check.
var standardHeaders = []string{
	"torch/csrc/api/include/torch/all.h",
	"c10/macros/Macros.h",
	"c10/util/C++17.h",
	"torch/headeronly/macros/Macros.h",
}

var cplusplusRE = regexp.MustCompile(`^\s*#\s*(?:el)?if\b.*__cplusplus\s*<\s*(\d{6})L?`)

// minStandard is what lrtrain's own C++ needs whatever libtorch accepts.
const minStandard = 2017

// cxxStandard reads the C++ standard the headers demand: the largest N of an
// `__cplusplus < N` test whose branch is an #error, never below C++17. A test that
// only selects code (no #error) demands nothing.
func cxxStandard(include string) (string, error) {
	year := minStandard
	read := 0
	for _, h := range standardHeaders {
		b, err := os.ReadFile(filepath.Join(include, h))
		if err != nil {
			continue
		}
		read++
		if y := requiredYear(string(b)); y > year {
			year = y
		}
	}
	if read == 0 {
		return "", fmt.Errorf("none of %s under %s", strings.Join(standardHeaders, ", "), include)
	}
	return fmt.Sprintf("c++%02d", year%100), nil
}

// requiredYear returns the year of the newest standard an #error guard demands
// (202002L -> 2020), or 0.
func requiredYear(src string) int {
	lines := strings.Split(src, "\n")
	best := 0
	for i, l := range lines {
		m := cplusplusRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		v, _ := strconv.Atoi(m[1])
		for _, next := range lines[i+1:] {
			t := strings.TrimSpace(next)
			if strings.HasPrefix(t, "#error") {
				if y := v / 100; y > best {
					best = y
				}
				break
			}
			if strings.HasPrefix(t, "#") { // #endif, #else, #elif, #define, ...: no error here
				break
			}
		}
	}
	return best
}

// findCUDARuntime locates what a CUDA libtorch's headers and lrtrain's CUDA code
// need besides libtorch: the CUDA runtime headers (with cuBLAS and cuSPARSE, which
// ATen's CUDA headers include) and libcudart. Headers: $CUDA_HOME's toolkit (it
// matches nvcc), else the pip wheels beside torch (nvidia/<pkg>/include, CUDA 12
// and CUDA 13's nvidia/cu13), else the system's. libcudart: the one beside a pip
// torch (one process must load the runtime libtorch_cuda was built with), else
// the toolkit's, else the system's. looked names every place tried, for a warning.
func findCUDARuntime(lt libtorch, e detectEnv) (headers bool, incs []string, libDir, lib string, looked []string) {
	var pipNvidia string
	if lt.Source == sourcePip || lt.Source == sourceEnv {
		pipNvidia = filepath.Join(filepath.Dir(filepath.Dir(lt.Include)), "nvidia")
	}
	const header = "cuda_runtime_api.h"
	switch home := filepath.Join(e.cudaHome, "include"); {
	case e.cudaHome != "" && fileExists(filepath.Join(home, header)):
		headers, incs = true, []string{home}
	default:
		looked = append(looked, filepath.Join(home, header))
		if pipNvidia != "" {
			dirs, _ := filepath.Glob(filepath.Join(pipNvidia, "*", "include"))
			sort.Strings(dirs)
			for _, d := range dirs {
				if fileExists(filepath.Join(d, header)) {
					headers, incs = true, dirs
					break
				}
			}
			if incs == nil {
				looked = append(looked, filepath.Join(pipNvidia, "*", "include", header))
			}
		}
		if !headers {
			if headers = fileExists(filepath.Join(e.sysInclude, header)); !headers {
				looked = append(looked, filepath.Join(e.sysInclude, header))
			}
		}
	}
	var candidates []string
	if pipNvidia != "" {
		candidates = append(candidates, filepath.Join(pipNvidia, "*", "lib"))
	}
	if e.cudaHome != "" {
		candidates = append(candidates, filepath.Join(e.cudaHome, "lib64"), filepath.Join(e.cudaHome, "targets", "x86_64-linux", "lib"))
	}
	candidates = append(candidates, e.sysLib)
	for _, pattern := range candidates {
		dirs, _ := filepath.Glob(pattern)
		sort.Strings(dirs)
		for _, d := range dirs {
			if name := cudartName(d); name != "" {
				return headers, incs, d, name, looked
			}
		}
		looked = append(looked, filepath.Join(pattern, "libcudart.so*"))
	}
	return headers, incs, "", "", looked
}

// cudartName returns how to link the CUDA runtime in dir: "cudart" when the
// development symlink libcudart.so is there, else ":libcudart.so.N" for the newest
// runtime (pip wheels ship only the versioned file), else "".
func cudartName(dir string) string {
	if fileExists(filepath.Join(dir, "libcudart.so")) {
		return "cudart"
	}
	files, _ := filepath.Glob(filepath.Join(dir, "libcudart.so.*"))
	best, bestMajor := "", -1
	for _, f := range files {
		base := filepath.Base(f)
		major, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(base, "libcudart.so."), ".", 2)[0])
		if err == nil && major > bestMajor && strings.Count(base, ".") == 2 { // libcudart.so.12, not .so.12.4.127
			best, bestMajor = base, major
		}
	}
	if best == "" {
		return ""
	}
	return ":" + best
}
