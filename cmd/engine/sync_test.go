package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSync_UnknownPipeline: a mistyped name is a usage error that names
// the pipelines there are, and leaves no state file behind.
func TestSync_UnknownPipeline(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), "kh.db")
	_, errOut, code := runCLI(t, nil, "sync", "cases_to_oskar", "--specs", "../../specs/example", "--state", statePath)
	if code != 2 || !strings.Contains(errOut, `no pipeline "cases_to_oskar" in example (have: cases_to_oscar)`) || !strings.Contains(errOut, "engine sync --help") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if _, err := os.Stat(statePath); !os.IsNotExist(err) {
		t.Errorf("state file: %v, want none created", err)
	}
}
