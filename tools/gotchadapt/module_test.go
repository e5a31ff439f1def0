package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// offlineCache writes a module cache holding example.com/fake@v1.0.0 the way a
// carried, trimmed cache holds it: the extracted tree and cache/download's .info, .mod
// and .ziphash files, no zip. It returns the cache and a module requiring it.
func offlineCache(t *testing.T, extracted bool) (cache, root string) {
	t.Helper()
	cache, root = t.TempDir(), t.TempDir()
	gomod := "module example.com/fake\n\ngo 1.21\n"
	dl := filepath.Join(cache, "cache", "download", "example.com", "fake", "@v")
	files := map[string]string{
		filepath.Join(dl, "v1.0.0.info"):    `{"Version":"v1.0.0"}`,
		filepath.Join(dl, "v1.0.0.mod"):     gomod,
		filepath.Join(dl, "v1.0.0.ziphash"): "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		filepath.Join(root, "go.mod"):       "module example.com/user\n\ngo 1.21\n\nrequire example.com/fake v1.0.0\n",
	}
	if extracted {
		files[filepath.Join(cache, "example.com", "fake@v1.0.0", "go.mod")] = gomod
		files[filepath.Join(cache, "example.com", "fake@v1.0.0", "fake.go")] = "package fake\n"
	}
	for path, body := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cache, root
}

// offline points the go command at cache with the network off, as on a GPU machine
// that received the module cache with the tree.
func offline(t *testing.T, cache string) {
	t.Setenv("GOMODCACHE", cache)
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOTOOLCHAIN", "local")
}

// With the network off and no zip in the cache, the extracted copy is found through
// `go list -m` (go mod download alone refuses: "module lookup disabled").
func TestFindModuleOffline(t *testing.T) {
	cache, root := offlineCache(t, true)
	offline(t, cache)
	m, err := findModule(root, "example.com/fake@v1.0.0")
	if err != nil {
		t.Fatalf("findModule offline: %v", err)
	}
	if want := filepath.Join(cache, "example.com", "fake@v1.0.0"); m.Dir != want || m.Version != "v1.0.0" {
		t.Errorf("findModule = %+v, want Dir %s, version v1.0.0", m, want)
	}
	// Another version than the one required is not taken for it.
	if _, err := findModule(root, "example.com/fake@v1.0.1"); err == nil {
		t.Error("findModule(v1.0.1) with only v1.0.0 in the cache: no error")
	}
}

// Without the extracted copy, the download is tried and its refusal reaches the caller
// with the module named.
func TestFindModuleOfflineMissing(t *testing.T) {
	cache, root := offlineCache(t, false)
	offline(t, cache)
	_, err := findModule(root, "example.com/fake@v1.0.0")
	if err == nil || !strings.Contains(err.Error(), "example.com/fake@v1.0.0") || !strings.Contains(err.Error(), "GOPROXY=off") {
		t.Fatalf("findModule without the extracted copy: %v, want the download's refusal naming the module", err)
	}
}
