package testkit

import (
	"os/exec"
	"strings"
	"testing"
)

// No package of the module imports the kit outside its tests (the kit imports package
// testing, which must not reach the trainer's binaries): go list's Imports, which leave
// out test files, name testkit only in the kit's own packages.
func TestOnlyTestsImportTheKit(t *testing.T) {
	const kit = "github.com/lrtrain/lrtrain/internal/testkit"
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/lrtrain/lrtrain/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list named %d packages:\n%s", len(lines), out)
	}
	for _, line := range lines {
		pkg, imports, _ := strings.Cut(line, " ")
		if pkg == kit || strings.HasPrefix(pkg, kit+"/") {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if imp == kit || strings.HasPrefix(imp, kit+"/") {
				t.Errorf("%s imports %s outside its tests", pkg, imp)
			}
		}
	}
}
