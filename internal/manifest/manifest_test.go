package manifest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/engine"
	"casesync/engine/mapping"
	"casesync/engine/spec"
	"casesync/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files and docs/manifests")

// load loads a deployment with positions relative to root, as engine
// manifest prints them when run from the repository root.
func load(t *testing.T, root, dir string) *engine.Plan {
	t.Helper()
	plan, err := spec.Load(filepath.Join(root, dir), spec.Options{Cwd: root})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/manifest -update writes it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s is not what engine manifest generates from the spec now; regenerate it: go test ./internal/manifest -update\n--- got ---\n%s", path, got)
	}
}

// TestGolden guards every format on the example deployment.
func TestGolden(t *testing.T) {
	root := testenv.RepoRoot(t)
	m := Build(load(t, root, "specs/example"))
	for _, tc := range []struct {
		file string
		out  []byte
	}{
		{"example.md", m.Markdown()},
		{"example.json", m.JSON()},
		{"example.html", m.HTML()},
	} {
		t.Run(tc.file, func(t *testing.T) { golden(t, filepath.Join("testdata", tc.file), tc.out) })
	}
}

// TestCambodiaDoc: the Cambodia manifest checked in under docs/ is the one
// the spec generates, so it can never drift from what the engine sends.
// It lists every field each pipeline sends with its class, and quotes the
// consent rule of every pipeline that has one.
func TestCambodiaDoc(t *testing.T) {
	root := testenv.RepoRoot(t)
	plan := load(t, root, "specs/cambodia")
	m := Build(plan)
	md := m.Markdown()
	golden(t, filepath.Join(root, "docs", "manifests", "cambodia.md"), md)
	for _, p := range m.Pipelines {
		pl := plan.Pipelines[p.Name]
		if want := countLeaves(pl); len(p.Fields) != want {
			t.Errorf("%s: %d fields listed, the map sends %d", p.Name, len(p.Fields), want)
		}
		for _, f := range pl.Filters {
			if strings.Contains(f.Expr.String(), "consent") && !bytes.Contains(md, []byte("| "+f.Reason+" | `"+cell(f.Expr.String())+"` | **consent** | "+f.Pos+" |")) {
				t.Errorf("%s: consent rule %s at %s not quoted", p.Name, f.Reason, f.Pos)
			}
		}
	}
	if !bytes.Contains(md, []byte("| date_of_birth | **pii** |")) {
		t.Error("date_of_birth is not listed as pii")
	}
}

func countLeaves(p *engine.Pipeline) int {
	var count func(fields []mapping.Field) int
	count = func(fields []mapping.Field) int {
		c := 0
		for _, f := range fields {
			if f.Value != nil && (f.Value.Fields != nil || f.Value.Map != nil) {
				c += count(f.Value.Fields) + count(f.Value.Map)
				continue
			}
			c++
		}
		return c
	}
	return count(p.Map.Fields)
}

// A field added to a map shows up in the manifest with its class; a field
// removed disappears.
func TestFieldAddedAndRemoved(t *testing.T) {
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(testenv.RepoRoot(t), "specs"))); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dst, "example", "referrals.cue")
	b, _ := os.ReadFile(file)
	src := strings.Replace(string(b), `		gender: jq:              ".sex"
`, `		phone_number: jq: ".owned_by_phone"
`, 1)
	if src == string(b) {
		t.Fatal("the example spec changed: update this test's edit")
	}
	os.WriteFile(file, []byte(src), 0o644)
	m := Build(load(t, dst, "example"))
	for _, f := range m.Pipelines[0].Fields {
		if f.Name == "gender" {
			t.Error("the removed field gender is still listed")
		}
	}
	md := string(m.Markdown())
	if !strings.Contains(md, "| phone_number | **pii** (owned_by_phone) | owned_by_phone |") {
		t.Errorf("the added field phone_number is not listed with its class:\n%s", md)
	}
}
