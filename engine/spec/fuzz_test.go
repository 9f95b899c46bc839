package spec_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/tools/txtar"

	"casesync/engine/spec"
)

// FuzzLoad feeds arbitrary text to the loader as a deployment's a.cue
// (beside the shipped cue.mod and lib, so imports resolve). The property:
// no panic, no error other than Problems, and every problem carries a code
// and either a position or a path.
func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/check/*.txtar")
	for _, file := range files {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, af := range ar.Files {
			if af.Name == "a.cue" {
				f.Add(af.Data)
			}
		}
	}
	root := f.TempDir()
	copyDir(f, "../../specs/cue.mod", filepath.Join(root, "cue.mod"))
	copyDir(f, "../../specs/lib", filepath.Join(root, "lib"))
	dir := filepath.Join(root, "deploy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if err := os.WriteFile(filepath.Join(dir, "a.cue"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := spec.Load(dir, spec.Options{Cwd: dir})
		if err == nil {
			return
		}
		var ps spec.Problems
		if !errors.As(err, &ps) {
			t.Fatalf("load returned %T, not Problems: %v", err, err)
		}
		if len(ps) == 0 {
			t.Fatal("empty Problems returned as an error")
		}
		for _, p := range ps {
			if p.Code == "" {
				t.Errorf("problem without a code: %s", p)
			}
			if p.Line == 0 && p.Path == "" {
				t.Errorf("problem without a position or a path: %s", p)
			}
		}
	})
}
