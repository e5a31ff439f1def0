package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// needed returns a binary's DT_NEEDED entries (what `readelf -d` lists as NEEDED).
func needed(t *testing.T, bin string) []string {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	return libs
}

// hasLib reports whether a NEEDED entry is the library (any version suffix).
func hasLib(libs []string, name string) bool {
	for _, l := range libs {
		if l == name || strings.HasPrefix(l, name+".") {
			return true
		}
	}
	return false
}

// buildCgoMain builds a program whose only content is the given cgo LDFLAGS: it
// references no libtorch symbol, as lrtrain references none of libtorch_cuda's.
func buildCgoMain(t *testing.T, ldflags []string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module probe\n\ngo 1.22\n")
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\n// #cgo LDFLAGS: "+strings.Join(ldflags, " ")+"\nimport \"C\"\n\nfunc main() {}\n")
	bin := filepath.Join(dir, "probe")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=1", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build with LDFLAGS %v: %v\n%s", ldflags, err, out)
	}
	return bin
}

// A CUDA libtorch's libraries stay in NEEDED though nothing references them,
// and the binary starts without LD_LIBRARY_PATH (the rpath finds them). The same
// libraries linked plainly under --as-needed (gcc's default here) vanish: the
// trap that made `train.device: auto` train on the CPU.
func TestNoAsNeededKeepsLibtorchCUDA(t *testing.T) {
	if testing.Short() {
		t.Skip("long: compiles and links binaries; runs without -short")
	}
	site := t.TempDir()
	writeFile(t, filepath.Join(site, "torch/__init__.py"), "")
	fakeTree{include: filepath.Join(site, "torch/include"), lib: filepath.Join(site, "torch/lib"),
		version: [3]int{2, 6, 0}, abi: 1, cuda: true}.write(t)
	py, env := pythonWith(t, site)
	lt, err := detectLibtorch(detectEnv{python: py, pythonEnv: env, sysInclude: t.TempDir(), sysLib: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	bin := buildCgoMain(t, lt.ldFlags())
	libs := needed(t, bin)
	for _, want := range []string{"libtorch.so", "libtorch_cpu.so", "libc10.so", "libtorch_cuda.so", "libc10_cuda.so"} {
		if !hasLib(libs, want) {
			t.Errorf("NEEDED %v lacks %s", libs, want)
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the binary does not start (rpath %s): %v\n%s", lt.Lib, err, out)
	}

	var plain []string
	for _, f := range lt.ldFlags() {
		if !strings.Contains(f, "-state") {
			plain = append(plain, f)
		}
	}
	libs = needed(t, buildCgoMain(t, append([]string{"-Wl,--as-needed"}, plain...)))
	if hasLib(libs, "libtorch_cuda.so") || hasLib(libs, "libc10_cuda.so") {
		t.Errorf("without --no-as-needed the unreferenced CUDA libraries should be dropped, NEEDED is %v: the check above proves nothing", libs)
	}
}

// The libtorch this machine's build detects is the one a real binary links
// (gotch and phiop, as lrtrain does) and runs against: NEEDED holds libtorch,
// libtorch_cpu and libc10 (and libtorch_cuda for a CUDA libtorch), and phiop's
// C++ reports the detected version.
func TestBuiltBinaryNeedsTheDetectedLibtorch(t *testing.T) {
	if testing.Short() {
		t.Skip("long: compiles and links binaries; runs without -short")
	}
	lt, err := detectLibtorch(hostEnv())
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	gen, err := os.ReadFile(filepath.Join(root, phiopFlagsFile))
	if err != nil || string(gen) != lt.phiopGo() {
		t.Fatalf("%s is missing or not generated for %s (run make setup): %v", phiopFlagsFile, lt.describe(), err)
	}
	bin := filepath.Join(t.TempDir(), "needed")
	cmd := exec.Command("go", "build", "-o", bin, "./tools/gotchadapt/testdata/needed")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	libs := needed(t, bin)
	want := []string{"libtorch.so", "libtorch_cpu.so", "libc10.so"}
	if lt.CUDA {
		want = append(want, "libtorch_cuda.so", "libc10_cuda.so")
	}
	for _, w := range want {
		if !hasLib(libs, w) {
			t.Errorf("NEEDED %v lacks %s (%s)", libs, w, lt.describe())
		}
	}
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || !strings.HasPrefix(f[0], lt.Version) {
		t.Fatalf("the binary reports %q, want libtorch %s", out, lt.Version)
	}
	t.Logf("%s; binary: NEEDED %v, reports %s (cuda available: %s)", lt.describe(), libs, f[0], f[1])
}
