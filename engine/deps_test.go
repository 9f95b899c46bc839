package engine_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps_PointInward keeps the core free of adapters: no package of the
// engine may depend on a connector, the SQLite state, the daemon or the
// fakes, and the engine package itself on no CUE or SQL library.
func TestDeps_PointInward(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"casesync/connectors", "casesync/internal/", "modernc.org/sqlite", "net/http/httptest"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("engine/... depends on %s", dep)
			}
		}
	}
	out, err = exec.Command("go", "list", "-deps", "casesync/engine").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "cuelang.org") {
			t.Errorf("engine depends on %s", dep)
		}
	}
}

// TestDeps_PortsSpeakNoHTTP: the ports are shaped by what the runner
// needs, so no package of the engine imports net/http or net/url itself;
// a connector that is not an HTTP API implements them as easily.
func TestDeps_PortsSpeakNoHTTP(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ": ")
		for _, imp := range strings.Fields(imports) {
			if imp == "net/http" || imp == "net/url" {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}

// TestDeps_NoSystemNames: no per-system Go code in the core or connectors.
func TestDeps_NoSystemNames(t *testing.T) {
	out, _ := exec.Command("grep", "-rliE", "\\b(primero|oscar|progres|unhcr|ping)\\b", "--include=*.go", "--exclude=*_test.go", ".", "../connectors").CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("system names in core code:\n%s", s)
	}
}
