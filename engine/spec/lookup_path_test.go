//go:build unix

package spec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/engine/spec"
)

// lookupDeployment writes a deployment whose one lookup reads file, with
// the example's module and lib beside it, and returns its folder.
func lookupDeployment(t *testing.T, file, column string) (root, dir string) {
	t.Helper()
	root = t.TempDir()
	copyDir(t, "../../specs/cue.mod", filepath.Join(root, "cue.mod"))
	dir = filepath.Join(root, "deploy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cue := `package deploy

connectors: api: base_url: "http://localhost:1"
lookups: t: {file: "` + file + `", key: "` + column + `", value: "name"}
pipelines: p: {
	source: {connector: "api", path: "/items", key: ".id"}
	map: id: jq: ".id"
	upsert: {connector: "api", key: ".id", idempotent: true, create: {method: "POST", path: "/items"}}
}
`
	if err := os.WriteFile(filepath.Join(dir, "a.cue"), []byte(cue), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, dir
}

// TestLoad_LookupSymlinkOutsideIsRefused: a table that is a symbolic link
// (or sits in a linked folder) leading out of the deployment is refused;
// one linking to another file inside is read.
func TestLoad_LookupSymlinkOutsideIsRefused(t *testing.T) {
	tests := []struct {
		name    string
		link    func(t *testing.T, root, dir string) // makes deploy/table.csv or deploy/d/table.csv
		file    string
		wantErr string
	}{
		{"file link out", func(t *testing.T, root, dir string) {
			os.Symlink(filepath.Join(root, "private", "cases.csv"), filepath.Join(dir, "table.csv"))
		}, "table.csv", "table.csv is a symbolic link leading outside the deployment folder"},
		{"folder link out", func(t *testing.T, root, dir string) {
			os.Symlink(filepath.Join(root, "private"), filepath.Join(dir, "d"))
		}, "d/cases.csv", "d/cases.csv is a symbolic link leading outside the deployment folder"},
		{"link inside", func(t *testing.T, root, dir string) {
			os.WriteFile(filepath.Join(dir, "real.csv"), []byte("code,name\nm,male\n"), 0o644)
			os.Symlink("real.csv", filepath.Join(dir, "table.csv"))
		}, "table.csv", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, dir := lookupDeployment(t, tc.file, "code")
			os.MkdirAll(filepath.Join(root, "private"), 0o755)
			os.WriteFile(filepath.Join(root, "private", "cases.csv"), []byte("code,name\nm,SecretChildName\n"), 0o644)
			tc.link(t, root, dir)
			_, err := spec.Load(dir, spec.Options{Cwd: dir})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Load = %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "SecretChildName") {
				t.Errorf("the problem shows the linked file's content: %v", err)
			}
		})
	}
}

// TestLoad_LookupHeaderNotEchoed: naming a column a table lacks says so
// without quoting the table's header, which problems carry to /status.
func TestLoad_LookupHeaderNotEchoed(t *testing.T) {
	_, dir := lookupDeployment(t, "export.csv", "code")
	if err := os.WriteFile(filepath.Join(dir, "export.csv"), []byte("Sokha Chan 2014-02-01,name\nx,y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := spec.Load(dir, spec.Options{Cwd: dir})
	if err == nil || !strings.Contains(err.Error(), `export.csv has no column "code" (its header has 2 columns)`) {
		t.Fatalf("Load = %v, want the missing column named", err)
	}
	if strings.Contains(err.Error(), "Sokha") {
		t.Errorf("the problem quotes the table's header: %v", err)
	}
}
