package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// toolVersion changes whenever the adaptation itself changes, invalidating stamps.
const toolVersion = "gotchadapt-9"

const gotchModule = "github.com/sugarme/gotch"

type stamp struct {
	Key          string   `json:"key"`
	Gotch        string   `json:"gotch"`
	Torch        string   `json:"torch_version"`
	CUDA         bool     `json:"cuda"`
	Stubbed      []string `json:"stubbed_ops"`
	AdaptedAtUTC string   `json:"adapted_at_utc"`
}

func main() {
	root := flag.String("root", ".", "repository root (where go.mod is)")
	printEnv := flag.Bool("print-env", false, "print make-style CGO flag assignments for the detected libtorch and exit")
	force := flag.Bool("force", false, "redo the adaptation even if the stamp matches")
	detect := flag.Bool("detect", false, "print the libtorch found and exit (status 1 when none is)")
	requireCUDA := flag.Bool("require-cuda", false, "with -detect: status 1 unless the libtorch has CUDA and the CUDA runtime was found")
	flag.Parse()
	if *detect {
		lt, err := detectLibtorch(hostEnv())
		if err == nil && *requireCUDA {
			err = lt.canBuildCUDA()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gotchadapt:", err)
			os.Exit(1)
		}
		fmt.Println(lt.describe())
		return
	}
	if err := run(*root, *printEnv, *force); err != nil {
		fmt.Fprintln(os.Stderr, "gotchadapt:", err)
		os.Exit(1)
	}
}

func run(root string, printEnv, force bool) error {
	lt, err := detectLibtorch(hostEnv())
	if err != nil {
		return err
	}
	if printEnv {
		fmt.Printf("LIBTORCH_VERSION=%s\nLIBTORCH_SOURCE=%s\nLIBTORCH_CUDA=%t\nLIBTORCH_CXXFLAGS=%s\nLIBTORCH_LDFLAGS=%s\nLIBTORCH_CUDA_CXXFLAGS=%s\nLIBTORCH_CUDA_LDFLAGS=%s\n",
			lt.Version, lt.Source, lt.CUDA, strings.Join(lt.cxxFlags(), " "), strings.Join(lt.ldFlags(), " "),
			strings.Join(lt.cudaCXXFlags(), " "), strings.Join(lt.cudaLDFlags(), " "))
		return nil
	}
	fmt.Println("gotchadapt:", lt.describe())
	if err := writeIfChanged(filepath.Join(root, phiopFlagsFile), lt.phiopGo()); err != nil {
		return err
	}
	version, err := requiredVersion(filepath.Join(root, "go.mod"))
	if err != nil {
		return err
	}
	mod, err := findModule(root, gotchModule+"@"+version)
	if err != nil {
		return err
	}
	key := inputKey(mod, lt)
	dest := filepath.Join(root, ".build", "gotch")
	stampPath := filepath.Join(dest, ".lrtrain-adapt.json")
	if !force {
		if s, err := readStamp(stampPath); err == nil && s.Key == key {
			fmt.Printf("gotchadapt: gotch %s already adapted to libtorch %s (%d ops stubbed); cached\n", version, lt.Version, len(s.Stubbed))
			return writeGoWork(root, version)
		}
	}
	start := time.Now()
	tmp := dest + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := copyTree(mod.Dir, tmp); err != nil {
		return fmt.Errorf("copy %s: %w", mod.Dir, err)
	}
	libtch := filepath.Join(tmp, "libtch")
	if err := os.WriteFile(filepath.Join(libtch, "lib.go"), []byte(lt.libGo()), 0o644); err != nil {
		return err
	}
	if err := applyGoFixes(tmp); err != nil {
		return err
	}
	if err := applyMallocFix(tmp); err != nil {
		return err
	}
	if err := applyLockFix(tmp); err != nil {
		return err
	}
	var stubbed []string
	if !lt.isTarget() {
		stubbed, err = stubUncompilable(libtch, lt)
		if err != nil {
			return err
		}
	}
	s := stamp{Key: key, Gotch: version, Torch: lt.Version, CUDA: lt.CUDA, Stubbed: stubbed,
		AdaptedAtUTC: time.Now().UTC().Format(time.RFC3339)}
	b, _ := json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, ".lrtrain-adapt.json"), b, 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(dest); err != nil {
		return err
	}
	if err := os.Rename(tmp, dest); err != nil {
		return err
	}
	fmt.Printf("gotchadapt: adapted gotch %s to libtorch %s (cuda=%t): %d ops stubbed in %s\n",
		version, lt.Version, lt.CUDA, len(stubbed), time.Since(start).Round(time.Second))
	return writeGoWork(root, version)
}

// requiredVersion reads the gotch version required by go.mod.
func requiredVersion(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimSpace(line))
		for i := 0; i+1 < len(f); i++ {
			if f[i] == gotchModule {
				return f[i+1], nil
			}
		}
	}
	return "", fmt.Errorf("%s does not require %s", gomod, gotchModule)
}

type module struct {
	Dir, Sum, Version string
	Error             string // go mod download's per-module error
}

// findModule returns the module cache's extracted copy of spec (path@version, a
// requirement of root's go.mod). It asks `go list -m` first, which needs no network
// and no zip when the copy is already extracted (a module cache carried to an offline
// machine: the extracted tree plus cache/download's .info, .mod and .ziphash files),
// and downloads only when the copy is not there.
func findModule(root, spec string) (module, error) {
	path, _, _ := strings.Cut(spec, "@")
	if m, err := goModuleJSON(root, "list", "-m", "-json", path); err == nil && m.Dir != "" && spec == path+"@"+m.Version {
		if _, err := os.Stat(filepath.Join(m.Dir, "go.mod")); err == nil {
			return m, nil
		}
	}
	m, err := goModuleJSON(root, "mod", "download", "-json", spec)
	if err != nil {
		return module{}, err
	}
	if m.Dir == "" {
		return module{}, fmt.Errorf("go mod download %s: no directory in its answer", spec)
	}
	return m, nil
}

// goModuleJSON runs `go args...` in root (workspace off) and decodes its JSON answer.
func goModuleJSON(root string, args ...string) (module, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var m module
	if err := json.Unmarshal(out, &m); err != nil {
		if runErr == nil {
			runErr = fmt.Errorf("unexpected output %q", out)
		}
		return module{}, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), runErr, bytes.TrimSpace(stderr.Bytes()))
	}
	if m.Error != "" {
		return module{}, fmt.Errorf("go %s: %s", strings.Join(args, " "), m.Error)
	}
	if runErr != nil {
		return module{}, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), runErr, bytes.TrimSpace(stderr.Bytes()))
	}
	return m, nil
}

func inputKey(m module, lt libtorch) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", toolVersion, m.Version, m.Sum, lt.libGo())
	return hex.EncodeToString(h.Sum(nil))
}

func readStamp(path string) (stamp, error) {
	var s stamp
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

// writeGoWork points the workspace at the adapted copy. go.work is generated and
// not committed; the committed go.mod keeps requiring the upstream version.
func writeGoWork(root, version string) error {
	goVersion := goDirective(filepath.Join(root, "go.mod"))
	content := fmt.Sprintf("// Code generated by tools/gotchadapt. DO NOT EDIT.\n\ngo %s\n\nuse .\n\nreplace %s %s => ./.build/gotch\n",
		goVersion, gotchModule, version)
	return writeIfChanged(filepath.Join(root, "go.work"), content)
}

// writeIfChanged leaves a file that already holds content untouched.
func writeIfChanged(path, content string) error {
	if old, err := os.ReadFile(path); err == nil && string(old) == content {
		return nil
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

// goDirective returns go.mod's go version (go.work may not be older than it).
func goDirective(gomod string) string {
	b, err := os.ReadFile(gomod)
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "go" {
				return f[1]
			}
		}
	}
	return "1.26"
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
