package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Fake libtorch layouts for the detection tests: real version headers and real
// (tiny) ELF shared libraries, so detection reads them exactly as it reads a
// real install.

// Sources of the fake libraries: c10.cpp exports a function taking a std::string
// (its mangled name carries __cxx11 under the new libstdc++ ABI only); plain.c
// exports a C function.
const (
	fakeC10Src   = "#include <string>\nvoid lrtrain_fake_c10(const std::string& s) { (void)s; }\n"
	fakePlainSrc = "int lrtrain_fake(void) { return 1; }\n"
)

func runTool(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return nil
}

// writeFile creates parent directories as needed.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// objDir holds the fake libraries' objects, compiled once per test binary.
var (
	objDir  string
	objOnce sync.Once
	objErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if objDir != "" {
		os.RemoveAll(objDir)
	}
	os.Exit(code)
}

// fakeObject returns the object for the plain library (c10ABI < 0) or for libc10
// with the given ABI.
func fakeObject(t *testing.T, c10ABI int) string {
	t.Helper()
	objOnce.Do(func() {
		if objDir, objErr = os.MkdirTemp("", "gotchadapt-fake-"); objErr != nil {
			return
		}
		for _, o := range []struct{ name, lang, src, flag string }{
			{"plain", "gcc", fakePlainSrc, ""},
			{"c10-abi0", "g++", fakeC10Src, "-D_GLIBCXX_USE_CXX11_ABI=0"},
			{"c10-abi1", "g++", fakeC10Src, "-D_GLIBCXX_USE_CXX11_ABI=1"},
		} {
			src := filepath.Join(objDir, o.name+map[string]string{"gcc": ".c", "g++": ".cpp"}[o.lang])
			if objErr = os.WriteFile(src, []byte(o.src), 0o644); objErr != nil {
				return
			}
			args := []string{"-c", "-fPIC", "-o", filepath.Join(objDir, o.name+".o"), src}
			if o.flag != "" {
				args = append(args, o.flag)
			}
			if objErr = runTool(o.lang, args...); objErr != nil {
				return
			}
		}
	})
	if objErr != nil {
		t.Fatalf("compiling the fake libraries: %v", objErr)
	}
	if c10ABI < 0 {
		return filepath.Join(objDir, "plain.o")
	}
	return filepath.Join(objDir, fmt.Sprintf("c10-abi%d.o", c10ABI))
}

// sharedLib links a fake library named name (also its soname: it is what NEEDED
// records) into dir: the plain C one, or libc10 with the given ABI.
func sharedLib(t *testing.T, dir, name string, c10ABI int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runTool("g++", "-shared", "-Wl,-soname,"+name, "-o", filepath.Join(dir, name), fakeObject(t, c10ABI)); err != nil {
		t.Fatal(err)
	}
}

// fakeTree is one libtorch install laid out in a temporary directory.
type fakeTree struct {
	include, lib string
	version      [3]int
	abi          int    // 0 or 1: libc10's string ABI
	stdGuard     string // the __cplusplus value torch/all.h's #error guard demands
	cuda         bool   // libtorch_cuda.so and libc10_cuda.so too
	forwarded    bool   // version.h only includes torch/headeronly/version.h (libtorch 2.9+)
}

// write lays the tree out: version.h, torch/all.h with its guard, and the
// libraries libtorch, libtorch_cpu, libc10 (+ CUDA ones).
func (f fakeTree) write(t *testing.T) {
	t.Helper()
	api := filepath.Join(f.include, "torch/csrc/api/include/torch")
	macros := fmt.Sprintf(
		"#pragma once\n#define TORCH_VERSION_MAJOR %d\n#define TORCH_VERSION_MINOR %d\n#define TORCH_VERSION_PATCH %d\n",
		f.version[0], f.version[1], f.version[2])
	if f.forwarded {
		writeFile(t, filepath.Join(f.include, "torch/headeronly/version.h"), macros)
		macros = "#pragma once\n\n#include <torch/headeronly/version.h>\n"
	}
	writeFile(t, filepath.Join(api, "version.h"), macros)
	guard := f.stdGuard
	if guard == "" {
		guard = "201703L"
	}
	writeFile(t, filepath.Join(api, "all.h"), fmt.Sprintf(
		"#pragma once\n\n#if !defined(_MSC_VER) && __cplusplus < %s\n#error C++ too old for this libtorch.\n#endif\n\n#include <torch/version.h>\n", guard))
	writeFile(t, filepath.Join(f.include, "c10/util/C++17.h"),
		"#pragma once\n#if __cplusplus < 202002L\n// polyfills for C++17 compilers, no error\n#define FAKE_POLYFILL 1\n#endif\n")
	sharedLib(t, f.lib, "libc10.so", f.abi)
	for _, l := range []string{"libtorch.so", "libtorch_cpu.so"} {
		sharedLib(t, f.lib, l, -1)
	}
	if f.cuda {
		sharedLib(t, f.lib, "libtorch_cuda.so", -1)
		sharedLib(t, f.lib, "libc10_cuda.so", -1)
	}
}

// noTorchPython is an interpreter stand-in that finds no torch package.
func noTorchPython(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "python3")
	writeFile(t, p, "#!/bin/sh\necho\n")
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// pythonWith returns the real python3 and an environment in which it imports
// torch from site (and nothing from the user's site-packages).
func pythonWith(t *testing.T, site string) (string, []string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to test pip's layout: %v", err)
	}
	return py, append(os.Environ(), "PYTHONPATH="+site, "PYTHONNOUSERSITE=1")
}
