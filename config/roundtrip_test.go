package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// roundTrip checks that Marshal's output decodes to the same configuration and marshals
// to the same bytes.
func roundTrip(t *testing.T, name string, c *Config) {
	t.Helper()
	out, err := c.Marshal()
	if err != nil {
		t.Fatalf("%s: Marshal: %v", name, err)
	}
	back, err := Decode(out, name+" (marshalled)", nil)
	if err != nil {
		t.Fatalf("%s: decoding Marshal's output: %v\n%s", name, err, out)
	}
	if !reflect.DeepEqual(withoutWhere(back), withoutWhere(c)) {
		t.Errorf("%s: round trip changed the config\nbefore %+v\nafter  %+v\n%s", name, *c, *back, out)
	}
	again, err := back.Marshal()
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("%s: second Marshal differs (%v)\n%s\n---\n%s", name, err, out, again)
	}
}

func TestMarshalRoundTrips(t *testing.T) {
	cases := map[string][]string{
		"defaults": nil,
		"regex targets, custom template, labels": {
			"adapter.target_modules=regex:.*\\.(q|v)_proj", "data.template.with_input='A {instruction} {input}'",
			"data.template.no_input='A {instruction}'", "data.labels=[neg, pos]", "train.lr=1.2345678901234e-05",
			"data.seed=0", "train.seed=18446744073709551615", "dist.timeout=1h2m3.5s",
		},
		"all-linear, sinelora": {"adapter.target_modules=all-linear", "adapter.method=sinelora", "adapter.alpha=0.3"},
		"odd strings":          {"model.path='yes'", "output.dir='123'", "checkpoint.resume='null'", "data.train=['a: b', '#c']"},
	}
	for name, set := range cases {
		c, err := Decode(nil, "", set)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		roundTrip(t, name, c)
	}
}

func TestExampleConfigs(t *testing.T) {
	model := t.TempDir()
	writeFile(t, model, "config.json", "{}")
	t.Chdir("..") // the examples' paths are relative to the repository root
	files, err := filepath.Glob("config/examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(src), "\n")
		if want := "# lrtrain train --config " + f; first != want {
			t.Errorf("%s begins with %q, want %q", f, first, want)
		}
		c, err := Load(f, []string{"model.path=" + model})
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		roundTrip(t, f, c)
	}
}
