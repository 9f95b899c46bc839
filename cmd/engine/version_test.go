package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"casesync/internal/testenv"
)

// TestVersion builds the engine as a release would and checks that
// --version prints a version and the commit it was built from: stamped by
// the Go toolchain from .git in a clone (Go does not stamp from a linked
// git worktree, whose .git is a file), and by -ldflags -X where there is
// no .git (the Dockerfile's build).
func TestVersion(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed: the test compares with git rev-parse HEAD")
	}
	root := testenv.RepoRoot(t)
	head, err := exec.Command(git, "-C", root, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout (%v): nothing to compare the revision with", err)
	}
	rev := strings.TrimSpace(string(head))
	tests := []struct {
		name  string
		flags []string
		skip  string
	}{
		{name: "ldflags", flags: []string{"-buildvcs=false", "-ldflags", "-X casesync/internal/version.revision=" + rev + " -X casesync/internal/version.version=v0.0.0-test"}},
		{name: "vcs stamp", flags: []string{"-buildvcs=true"}},
	}
	if st, err := os.Stat(filepath.Join(root, ".git")); err != nil || !st.IsDir() {
		tests[1].skip = ".git is not a folder (a linked worktree): Go stamps no VCS information here"
	}
	want := regexp.MustCompile(`^casesync (\S+) \(revision ([0-9a-f]{40})(, modified)?, `)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip != "" {
				t.Skip(tt.skip)
			}
			bin := filepath.Join(t.TempDir(), "engine")
			cmd := exec.Command("go", append(append([]string{"build"}, tt.flags...), "-o", bin, ".")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build %v: %v\n%s", tt.flags, err, out)
			}
			out, err := exec.Command(bin, "--version").Output()
			if err != nil {
				t.Fatal(err)
			}
			m := want.FindStringSubmatch(string(out))
			if m == nil || m[2] != rev || m[1] == "" {
				t.Errorf("engine --version = %q, want casesync VERSION (revision %s, …)", out, rev)
			}
		})
	}
}
