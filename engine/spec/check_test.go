package spec_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"

	"casesync/engine/spec"
	"casesync/schemas"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestCheck_Cases runs every testdata/check/*.txtar archive: the archive's
// files form a deployment folder (with the shipped specs/cue.mod and lib so
// cases can import them), and its "want" section lists the expected
// problems as "file:line:col code path", or "ok".
func TestCheck_Cases(t *testing.T) {
	files, err := filepath.Glob("../../testdata/check/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no check cases: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			copyDir(t, "../../specs/cue.mod", filepath.Join(root, "cue.mod"))
			copyDir(t, "../../specs/lib", filepath.Join(root, "lib"))
			dir := filepath.Join(root, "deploy")
			var want string
			for _, f := range ar.Files {
				if f.Name == "want" {
					want = string(f.Data)
					continue
				}
				p := filepath.Join(dir, f.Name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, f.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err = spec.Load(dir, spec.Options{Cwd: dir})
			got := render(t, err)
			noLeaks(t, err, root)
			if *update {
				for i := range ar.Files {
					if ar.Files[i].Name == "want" {
						ar.Files[i].Data = []byte(got)
					}
				}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s\nfull output:\n%v", diff, err)
			}
		})
	}
}

// noLeaks: a problem never shows the temp directory, an absolute path or
// the virtual schema file when the spec has a place of its own, and always
// has a code and a position or a path.
func noLeaks(t *testing.T, err error, root string) {
	t.Helper()
	ps, _ := err.(spec.Problems)
	for _, p := range ps {
		if strings.Contains(p.String(), root) || filepath.IsAbs(p.File) {
			t.Errorf("problem shows an absolute or temp path: %s", p)
		}
		if p.File == schemas.Filename {
			t.Errorf("problem placed in the schema: %s", p)
		}
		if p.Code == "" || (p.Line == 0 && p.Path == "") {
			t.Errorf("problem without a code, or without a position and a path: %s", p)
		}
		if _, ok := spec.Codes[p.Code]; !ok {
			t.Errorf("problem code %q is not in Codes", p.Code)
		}
	}
}

func render(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return "ok\n"
	}
	ps, ok := err.(spec.Problems)
	if !ok {
		t.Fatalf("load: %v", err)
	}
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.Pos() + " " + p.Code + " " + p.Path + "\n")
	}
	return b.String()
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheck_ShippedSpecs: every deployment shipped in specs/ loads clean.
func TestCheck_ShippedSpecs(t *testing.T) {
	dirs, err := spec.Deployments("../../specs")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("deployments: %v %v", dirs, err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if _, err := spec.Load(dir, spec.Options{}); err != nil {
				t.Fatalf("shipped spec has problems:\n%v", err)
			}
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	dirs, err := spec.Deployments("../../specs")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, dir := range dirs {
			if _, err := spec.Load(dir, spec.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestLoad_HashIgnoresStateFiles: a state file kept beside the specs must
// not change the spec hash (the daemon would reload for nothing).
func TestLoad_HashIgnoresStateFiles(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "../../specs/cue.mod", filepath.Join(dir, "cue.mod"))
	copyDir(t, "../../specs/lib", filepath.Join(dir, "lib"))
	copyDir(t, "../../specs/example", filepath.Join(dir, "example"))
	dep := filepath.Join(dir, "example")
	p1, err := spec.Load(dep, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"casesync.db", "casesync.db-wal", "casesync.db-shm", "casesync.db-intents", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dep, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p2, err := spec.Load(dep, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p1.Hash != p2.Hash {
		t.Errorf("hash changed from %s to %s by non-spec files", p1.Hash, p2.Hash)
	}
	if err := os.WriteFile(filepath.Join(dep, "oscar_service_names.json"), []byte(`{"a":"b"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	p3, err := spec.Load(dep, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p3.Hash == p2.Hash {
		t.Error("a changed lookup table must change the hash")
	}
}
