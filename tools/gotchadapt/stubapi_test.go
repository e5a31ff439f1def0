package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleAPI = `#include "torch_api.h"
#include <removed/in_new_libtorch.h>

using namespace std;

void at_manual_seed(int64_t seed) { torch_ok(seed); }

int at_autocast_is_enabled() {
  PROTECT(return old_autocast_is_enabled();)
  return -1;
}

void at_split(tensor t,
              int n) {
  PROTECT(old_split(t, n);)
}

tensor at_ok(tensor t) {
  PROTECT(return t;)
  return nullptr;
}
`

// The hand-written functions are found whatever their shape: one-liners,
// multi-line signatures, non-void with a trailing return.
func TestAPISpans(t *testing.T) {
	var got []string
	for _, sp := range apiSpans(strings.Split(sampleAPI, "\n")) {
		got = append(got, sp.name)
	}
	if strings.Join(got, ",") != "at_manual_seed,at_autocast_is_enabled,at_split,at_ok" {
		t.Fatalf("spans %v", got)
	}
}

// A miniature libtch compiled by the real g++: a missing header and two
// hand-written functions calling APIs the "libtorch" lacks. The loop comments out
// the include, stubs exactly those two functions, and the file then compiles.
func TestStubUncompilableHandWritten(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "torch_api.h"), `#pragma once
#include <cstdint>
#include <stdexcept>
typedef void *tensor;
inline void torch_ok(int64_t) {}
#define PROTECT(x) try { x } catch (const std::exception &e) { (void)e; }
#include "`+generatedFile+`"
`)
	writeFile(t, filepath.Join(dir, generatedFile), "void atg_fine(tensor *out__) {\n  PROTECT(\n    out__[0] = nullptr;\n  )\n}\n")
	writeFile(t, filepath.Join(dir, apiFile), sampleAPI)
	lt := libtorch{Source: sourceEnv, Version: "9.9.0", Include: filepath.Join(dir, "none"), CXX11ABI: true}

	names, err := stubUncompilable(dir, lt)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "at_autocast_is_enabled,at_split" {
		t.Fatalf("stubbed %v, want at_autocast_is_enabled and at_split", names)
	}
	b, err := os.ReadFile(filepath.Join(dir, apiFile))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, want := range []string{
		"// lrtrain: not in libtorch 9.9.0: #include <removed/in_new_libtorch.h>",
		"void at_manual_seed(int64_t seed) { torch_ok(seed); }",
		`gotch function at_autocast_is_enabled is not available in the installed libtorch 9.9.0`,
		"tensor at_ok(tensor t) {\n  PROTECT(return t;)",
		"void at_split(tensor t,\n              int n) {\n  PROTECT(throw",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("torch_api.cpp lacks %q:\n%s", want, src)
		}
	}
	if strings.Contains(src, "old_autocast_is_enabled") || strings.Contains(src, "old_split") {
		t.Errorf("a failing body survived:\n%s", src)
	}
	if _, ok, err := syntaxCheck(dir, lt); err != nil || !ok {
		t.Fatalf("the stubbed file does not compile: %v", err)
	}
}
