package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// No docker daemon here: these tests read the Dockerfile as docker would
// (continuation lines joined, comments dropped), check its stages, that what
// it copies from the checkout exists and is not excluded by .dockerignore,
// that what it copies from the build stage is what that stage's commands
// produce, and that the image tag is the one the manifests run.

type instruction struct {
	op   string // upper case
	args string
	line int
}

type stage struct {
	name, base string
	ins        []instruction
}

func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	start, n := 0, 0
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		op, args, _ := strings.Cut(text, " ")
		in := instruction{op: strings.ToUpper(op), args: strings.TrimSpace(args), line: start}
		if in.op == "FROM" {
			f := strings.Fields(in.args)
			s := stage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			if in.op != "ARG" {
				t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.op)
			}
			return
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "#") || trimmed == "" {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

var dockerBuildTag = regexp.MustCompile(`(?m)^#\s+docker build -t (\S+) \.$`)

// dockerImageTag is the tag of the Dockerfile's header `docker build -t TAG .`.
func dockerImageTag(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := dockerBuildTag.FindSubmatch(raw)
	if m == nil {
		t.Fatal("the Dockerfile's header does not say `docker build -t TAG .`")
	}
	return string(m[1])
}

func dockerIgnored(t *testing.T) []string {
	raw, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func TestDockerfileBuildsTheCUDABinaryAndShipsIt(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) != 2 || stages[0].name != "build" {
		t.Fatalf("stages %+v, want a build stage and a runtime stage", stages)
	}
	build, runtime := stages[0], stages[1]
	ignored := dockerIgnored(t)
	for _, must := range []string{".build", "go.work", "bin"} {
		if !slices.Contains(ignored, must) {
			t.Errorf(".dockerignore lacks %s: this checkout's generated state would enter the image", must)
		}
	}
	workdir := "/"
	var runs []string
	for _, in := range build.ins {
		switch in.op {
		case "WORKDIR":
			workdir = in.args
		case "RUN":
			runs = append(runs, in.args)
		case "COPY":
			f := strings.Fields(in.args)
			for _, src := range f[:len(f)-1] {
				if _, err := os.Stat(filepath.Join("../..", src)); err != nil {
					t.Errorf("Dockerfile:%d copies %s, which the checkout lacks", in.line, src)
				}
				if slices.Contains(ignored, src) {
					t.Errorf("Dockerfile:%d copies %s, which .dockerignore excludes", in.line, src)
				}
			}
		}
	}
	all := strings.Join(runs, "\n")
	for _, want := range []string{"make build-cuda", "go build -o bin/nccl-check ./nccl/cmd/nccl-check", "readelf -d bin/lrtrain"} {
		if !strings.Contains(all, want) {
			t.Errorf("the build stage does not run %q", want)
		}
	}
	// `make build-cuda` writes bin/lrtrain with the cuda tag, after the kernels.
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`(?m)^build-cuda:.*\n((?:\t.*\n)+)`).FindSubmatch(mk)
	if recipe == nil || !strings.Contains(string(recipe[1]), "-C phiop cuda") ||
		!strings.Contains(string(recipe[1]), "-tags cuda -o bin/lrtrain ./cmd/lrtrain") {
		t.Fatalf("Makefile's build-cuda recipe does not build the kernels and bin/lrtrain with -tags cuda: %q", recipe)
	}
	if _, err := os.Stat("../../nccl/cmd/nccl-check"); err != nil {
		t.Error(err)
	}
	produced := []string{joinWorkdir(workdir, "bin/lrtrain"), joinWorkdir(workdir, "bin/nccl-check"), "/out/site-packages/"}
	shipped := map[string]string{} // base name → destination
	for _, in := range runtime.ins {
		if in.op != "COPY" || !strings.HasPrefix(in.args, "--from=") {
			continue
		}
		f := strings.Fields(in.args)
		if f[0] != "--from=build" {
			t.Errorf("Dockerfile:%d copies from %s, not the build stage", in.line, f[0])
		}
		for _, src := range f[1 : len(f)-1] {
			if !slices.Contains(produced, src) {
				t.Errorf("Dockerfile:%d copies %s, which the build stage does not produce (%v)", in.line, src, produced)
			}
			shipped[filepath.Base(src)] = f[len(f)-1]
		}
	}
	if shipped["lrtrain"] != "/usr/local/bin/" || shipped["nccl-check"] != "/usr/local/bin/" {
		t.Errorf("the runtime stage ships %v, want lrtrain and nccl-check in /usr/local/bin/ (the manifests run `lrtrain`)", shipped)
	}
	var entry string
	for _, in := range runtime.ins {
		if in.op == "ENTRYPOINT" {
			entry = in.args
		}
	}
	if entry != `["lrtrain"]` {
		t.Errorf("ENTRYPOINT %s, want [\"lrtrain\"]", entry)
	}
}

// joinWorkdir joins a WORKDIR and a relative path.
func joinWorkdir(dir, rel string) string { return strings.TrimSuffix(dir, "/") + "/" + rel }
