package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Where a libtorch was found.
const (
	sourceEnv    = "LIBTORCH" // $LIBTORCH: an unpacked libtorch zip or a torch package dir
	sourcePip    = "pip"      // the torch package python3 imports (pip, conda, venv)
	sourceDebian = "debian"   // Debian's libtorch-dev
)

// detectEnv is what detection looks at, so tests can point it at fake trees.
type detectEnv struct {
	libtorchDir string   // $LIBTORCH
	python      string   // interpreter asked where torch is; "" skips pip
	pythonEnv   []string // its environment (nil: this process's)
	sysInclude  string   // Debian's header root, /usr/include
	sysLib      string   // Debian's library dir, /usr/lib/<multiarch>
	cudaHome    string   // $CUDA_HOME, else /usr/local/cuda
}

// hostEnv describes this machine.
func hostEnv() detectEnv {
	e := detectEnv{
		libtorchDir: os.Getenv("LIBTORCH"),
		python:      os.Getenv("PYTHON"),
		sysInclude:  "/usr/include",
		sysLib:      "/usr/lib/x86_64-linux-gnu",
		cudaHome:    os.Getenv("CUDA_HOME"),
	}
	if e.python == "" {
		e.python = "python3"
	}
	if out, err := exec.Command("gcc", "-print-multiarch").Output(); err == nil && len(bytes.TrimSpace(out)) > 0 {
		e.sysLib = filepath.Join("/usr/lib", string(bytes.TrimSpace(out)))
	}
	if e.cudaHome == "" {
		e.cudaHome = "/usr/local/cuda"
	}
	return e
}

// detectLibtorch finds the libtorch to build against: $LIBTORCH when set (it must
// then be valid), else the torch package python3 imports (pip's wheels carry
// include/ and lib/), else Debian's libtorch-dev. It fails naming every place it
// looked.
func detectLibtorch(e detectEnv) (libtorch, error) {
	if e.libtorchDir != "" {
		lt, err := fromDir(e.libtorchDir, sourceEnv, e.sysLib)
		if err != nil {
			return lt, fmt.Errorf("LIBTORCH=%s: %w", e.libtorchDir, err)
		}
		return finish(lt, e)
	}
	var looked []string
	if e.python != "" {
		dir, err := pythonTorchDir(e.python, e.pythonEnv)
		switch {
		case err != nil:
			looked = append(looked, fmt.Sprintf("%s: %v", e.python, err))
		case dir == "":
			looked = append(looked, e.python+": no torch package")
		default:
			lt, err := fromDir(dir, sourcePip, e.sysLib)
			if err == nil {
				return finish(debianBehind(lt, e), e)
			}
			looked = append(looked, fmt.Sprintf("%s's torch at %s: %v", e.python, dir, err))
		}
	}
	lt := libtorch{Source: sourceDebian, Include: e.sysInclude, Lib: e.sysLib}
	if err := lt.check(); err != nil {
		looked = append(looked, "Debian's libtorch-dev: "+err.Error())
		return lt, fmt.Errorf("libtorch not found; looked at\n  %s\ninstall Debian's libtorch-dev (make setup does), pip install torch, or set LIBTORCH to an unpacked libtorch",
			strings.Join(looked, "\n  "))
	}
	return finish(lt, e)
}

// fromDir reads the include/ + lib/ layout of a libtorch zip or a torch package
// (LIBTORCH=/usr selects Debian's: its libraries are in lib/<multiarch>).
func fromDir(dir, source, sysLib string) (libtorch, error) {
	lt := libtorch{Source: source, Include: filepath.Join(dir, "include"), Lib: filepath.Join(dir, "lib")}
	if _, err := os.Stat(filepath.Join(lt.Lib, "libtorch_cpu.so")); err != nil {
		if alt := filepath.Join(lt.Lib, filepath.Base(sysLib)); fileExists(filepath.Join(alt, "libtorch_cpu.so")) {
			lt.Lib = alt
		}
	}
	if filepath.Clean(lt.Include) == "/usr/include" && filepath.Clean(lt.Lib) == filepath.Clean(sysLib) {
		lt.Source = sourceDebian
	}
	return lt, lt.check()
}

// debianBehind recognises Debian's python3-torch, whose include/ and lib/ are
// symlinks into libtorch-dev's files: it is Debian's libtorch, on the default
// paths, and is described and flagged as such.
func debianBehind(lt libtorch, e detectEnv) libtorch {
	same := func(a, b string) bool {
		ra, err1 := filepath.EvalSymlinks(a)
		rb, err2 := filepath.EvalSymlinks(b)
		return err1 == nil && err2 == nil && ra == rb
	}
	realLib, err := filepath.EvalSymlinks(filepath.Join(lt.Lib, "libtorch_cpu.so"))
	if err != nil || !same(filepath.Dir(realLib), e.sysLib) ||
		!same(filepath.Join(lt.Include, "torch/csrc/api/include/torch/version.h"),
			filepath.Join(e.sysInclude, "torch/csrc/api/include/torch/version.h")) {
		return lt
	}
	lt.Source, lt.Include, lt.Lib = sourceDebian, e.sysInclude, e.sysLib
	return lt
}

// check reads the version header and requires libtorch_cpu.so beside it.
func (lt *libtorch) check() error {
	versionH := filepath.Join(lt.Include, "torch/csrc/api/include/torch/version.h")
	var err error
	if lt.Version, err = readTorchVersion(lt.Include, versionH); err != nil {
		return err
	}
	if !fileExists(filepath.Join(lt.Lib, "libtorch_cpu.so")) {
		return fmt.Errorf("libtorch %s headers in %s but no %s", lt.Version, lt.Include, filepath.Join(lt.Lib, "libtorch_cpu.so"))
	}
	return nil
}

// finish fills in what every layout shares: ABI, C++ standard, CUDA.
func finish(lt libtorch, e detectEnv) (libtorch, error) {
	var err error
	c10 := filepath.Join(lt.Lib, "libc10.so")
	if lt.CXX11ABI, err = usesCXX11ABI(c10); err != nil {
		return lt, fmt.Errorf("libtorch %s: the C++ ABI of %s: %w", lt.Version, c10, err)
	}
	if lt.CXXStd, err = cxxStandard(lt.Include); err != nil {
		return lt, fmt.Errorf("libtorch %s: %w", lt.Version, err)
	}
	lt.CUDA = fileExists(filepath.Join(lt.Lib, "libtorch_cuda.so"))
	if lt.CUDA {
		lt.CUDAHeaders, lt.CUDAInclude, lt.CUDARTDir, lt.CUDART, lt.CUDALooked = findCUDARuntime(lt, e)
	}
	return lt, nil
}

// pythonTorchDir asks the interpreter where the torch package is, without
// importing it (an import takes seconds and may touch the GPU).
func pythonTorchDir(python string, env []string) (string, error) {
	if _, err := exec.LookPath(python); err != nil {
		return "", errors.New("not installed")
	}
	cmd := exec.Command(python, "-c", "import importlib.util as u\n"+
		"s = u.find_spec('torch')\n"+
		"print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("asking for torch: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// usesCXX11ABI tells from the library's exported symbols whether libtorch was
// built with libstdc++'s new string ABI (Debian's and pip's 2.6+: yes; pip's
// wheels up to 2.5 and "pre-cxx11" zips: no). The symbols are what the linker
// matches, so they decide; torch._C._GLIBCXX_USE_CXX11_ABI reports the same bit.
func usesCXX11ABI(lib string) (bool, error) {
	f, err := elf.Open(lib)
	if err != nil {
		return false, err
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return false, err
	}
	defined := 0
	for _, s := range syms {
		if s.Section == elf.SHN_UNDEF {
			continue
		}
		defined++
		if strings.Contains(s.Name, "__cxx11") {
			return true, nil
		}
	}
	if defined == 0 {
		return false, errors.New("it exports no symbols")
	}
	return false, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
