package engine_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps_PointInward keeps the core free of adapters: the engine package
// must not depend on CUE, the REST connector, SQLite, or the fakes.
func TestDeps_PointInward(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "casesync/engine").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"casesync/connectors", "casesync/internal/state", "casesync/internal/fakes", "cuelang.org", "modernc.org/sqlite", "net/http/httptest"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("engine depends on %s", dep)
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
