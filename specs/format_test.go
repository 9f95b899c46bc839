package specs

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"cuelang.org/go/cue/format"
)

// cueFiles are the module's .cue files, schema and libs included: the
// files users open in an editor and copy to start a deployment.
func cueFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "tests" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".cue") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found %d .cue files under specs/: is the walk wrong?", len(out))
	}
	return out
}

// TestCUEFormat keeps the shipped specs as `cue fmt` writes them, so an
// editor that formats on save changes nothing but the user's own edit.
func TestCUEFormat(t *testing.T) {
	for _, p := range cueFiles(t) {
		t.Run(p, func(t *testing.T) {
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := format.Source(src)
			if err != nil {
				t.Fatalf("%s does not parse: %v", p, err)
			}
			if !bytes.Equal(got, src) {
				t.Errorf("%s is not cue fmt'd: run `cue fmt ./...` in specs/", p)
			}
		})
	}
}

// TestCUECLI runs the cue CLI at the version go.mod pins: `cue fmt
// --check` over the module, and `cue vet` on each deployment, which
// imports the schema (lib/schema) and so is checked against it. A planted
// typo proves vet applies the schema rather than passing anything.
func TestCUECLI(t *testing.T) {
	cue, err := exec.LookPath("cue")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the cue CLI is not installed; .ci/run installs it")
		}
		t.Skip("the cue CLI is not installed (go install cuelang.org/go/cmd/cue@<go.mod's version>); CI installs it")
	}
	want := cueModuleVersion(t)
	out, err := exec.Command(cue, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cue version "+want+"\n") {
		t.Fatalf("cue version: want %s (go.mod), got:\n%s", want, out)
	}
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command(cue, args...)
		cmd.Dir = dir
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	if out, err := run(".", "fmt", "--check", "./..."); err != nil {
		t.Errorf("cue fmt --check ./... in specs/: %v\n%s", err, out)
	}
	deps, err := filepath.Glob("*/deployment.cue")
	if err != nil {
		t.Fatal(err)
	}
	deps = append(deps, "example/referrals.cue")
	for _, d := range deps {
		if out, err := run(".", "vet", "./"+filepath.Dir(d)); err != nil {
			t.Errorf("cue vet ./%s: %v\n%s", filepath.Dir(d), err, out)
		}
	}

	// The same vet on a copy with a misspelt pipeline field must fail at it.
	tmp := t.TempDir()
	if err := os.CopyFS(tmp, os.DirFS(".")); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(tmp, "example", "referrals.cue")
	src, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	planted := strings.Replace(string(src), "\tdescription:", "\tdescriptin:", 1)
	if planted == string(src) {
		t.Fatal("example/referrals.cue has no description to misspell")
	}
	if err := os.WriteFile(f, []byte(planted), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := run(tmp, "vet", "./example")
	if err == nil || !strings.Contains(got, "descriptin: field not allowed") || !strings.Contains(got, "example/referrals.cue:42:") {
		t.Errorf("cue vet did not apply the schema to a misspelt field (err %v):\n%s", err, got)
	}
}

// cueModuleVersion is the cuelang.org/go version in go.mod.
func cueModuleVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "cuelang.org/go" {
			return f[1]
		}
	}
	t.Fatal("go.mod does not require cuelang.org/go")
	return ""
}
