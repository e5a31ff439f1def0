package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/lrtrain/lrtrain/config"
	"github.com/lrtrain/lrtrain/dist/launch"
)

// container is the part of a Kubernetes container spec the test reads.
type container struct {
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	} `yaml:"env"`
}

// findContainers walks any decoded manifest and returns every object that has
// both "command" and "image" keys.
func findContainers(t *testing.T, node any) []container {
	var out []container
	switch v := node.(type) {
	case map[string]any:
		if _, ok := v["image"]; ok {
			if _, ok := v["command"]; ok {
				b, err := yaml.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				var c container
				if err := yaml.Unmarshal(b, &c); err != nil {
					t.Fatal(err)
				}
				out = append(out, c)
			}
		}
		for _, child := range v {
			out = append(out, findContainers(t, child)...)
		}
	case []any:
		for _, child := range v {
			out = append(out, findContainers(t, child)...)
		}
	}
	return out
}

// TestKubernetesManifestsMatchTheLauncher parses every manifest in k8s/ and, for
// each container that runs `lrtrain launch`, parses its flags and PET_* variables
// with the real launch command and resolves them for an 8-GPU node, so that a
// renamed flag or a bad value in a manifest fails here rather than in a cluster.
func TestKubernetesManifestsMatchTheLauncher(t *testing.T) {
	files, err := filepath.Glob("../../k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests found: %v", err)
	}
	launches := 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		for doc := 0; ; doc++ {
			var node any
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s document %d: %v", file, doc, err)
			}
			for _, c := range findContainers(t, node) {
				if len(c.Command) == 0 || c.Command[0] != "lrtrain" || len(c.Args) == 0 || c.Args[0] != "launch" {
					continue
				}
				launches++
				env := map[string]string{}
				for _, e := range c.Env {
					env[e.Name] = e.Value
				}
				checkLaunchArgs(t, file, c.Args[1:], env)
			}
		}
	}
	if launches < 2 {
		t.Fatalf("found %d lrtrain launch containers in k8s/, want the Job and the PyTorchJob", launches)
	}
}

func checkLaunchArgs(t *testing.T, file string, args []string, env map[string]string) {
	t.Helper()
	// The same flags and environment handling as `lrtrain launch` (launch.go).
	o := launch.DefaultOptions()
	fs := pflag.NewFlagSet("launch", pflag.ContinueOnError)
	o.AddFlags(fs)
	fs.SetInterspersed(false)
	if err := fs.Parse(args); err != nil {
		t.Errorf("%s: flags %v: %v", file, args, err)
		return
	}
	for name := range env {
		if !strings.HasPrefix(name, "PET_") {
			t.Errorf("%s: unexpected env %s for the launcher", file, name)
		}
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if _, err := o.ApplyEnv(fs, lookup); err != nil {
		t.Errorf("%s: PET_* env: %v", file, err)
		return
	}
	workerArgs := fs.Args()
	if len(workerArgs) == 0 || workerArgs[0] != "train" {
		t.Errorf("%s: worker args %v, want `train ...`", file, workerArgs)
	}
	host := launch.Host{GPUs: []string{"0", "1", "2", "3", "4", "5", "6", "7"}, CPUs: 64}
	cfg, err := launch.Resolve(o, workerArgs, host)
	if err != nil {
		t.Errorf("%s: resolve %v with env %v: %v", file, args, env, err)
		return
	}
	s := cfg.String()
	for _, want := range []string{"lrtrain-etcd:2379", "lrtrain-qwen2"} {
		if !strings.Contains(s, want) {
			t.Errorf("%s: resolved config lacks %q: %s", file, want, s)
		}
	}
	t.Logf("%s: %s", file, s)
}

// TestKubernetesConfigMapIsAValidRunConfig decodes the run config that the Job's
// ConfigMap carries with the strict config decoder (unknown keys, wrong types).
func TestKubernetesConfigMapIsAValidRunConfig(t *testing.T) {
	raw, err := os.ReadFile("../../k8s/job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	found := 0
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc.Kind != "ConfigMap" {
			continue
		}
		for name, src := range doc.Data {
			found++
			if _, err := config.Decode([]byte(src), "k8s/job.yaml:"+name, nil); err != nil {
				t.Errorf("the ConfigMap's %s is not a valid run config: %v", name, err)
			}
		}
	}
	if found == 0 {
		t.Fatal("k8s/job.yaml has no ConfigMap with a run config")
	}
}
