package spec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/engine/spec"
)

// TestLoad_WarnsOnPlainHTTPToAnotherMachine: a base_url of http:// to a
// host other than this machine loads (a private network may have no TLS)
// but carries an insecure-url warning with its position; loopback and
// https do not.
func TestLoad_WarnsOnPlainHTTPToAnotherMachine(t *testing.T) {
	tests := []struct {
		url, want string
	}{
		{"http://10.0.4.7:8080", "a.cue:3:28: connectors.api.base_url: insecure-url: http://10.0.4.7:8080 is plain http to another machine"},
		{"http://primero.example.org", "insecure-url: http://primero.example.org is plain http"},
		{"http://user:pw@primero.example.org", "http://user:xxxxx@primero.example.org"},
		{"http://localhost:9000", ""},
		{"http://127.0.0.1:9000", ""},
		{"http://[::1]:9000", ""},
		{"https://primero.example.org", ""},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			root := t.TempDir()
			copyDir(t, "../../specs/cue.mod", filepath.Join(root, "cue.mod"))
			dir := filepath.Join(root, "deploy")
			os.MkdirAll(dir, 0o755)
			cue := "package deploy\n\nconnectors: api: base_url: \"" + tc.url + `"
pipelines: p: {
	source: {connector: "api", path: "/items", key: ".id"}
	map: id: jq: ".id"
	upsert: {connector: "api", key: ".id", idempotent: true, create: {method: "POST", path: "/items"}}
}
`
			if err := os.WriteFile(filepath.Join(dir, "a.cue"), []byte(cue), 0o644); err != nil {
				t.Fatal(err)
			}
			plan, err := spec.Load(dir, spec.Options{Cwd: dir})
			if err != nil {
				t.Fatalf("a warning must not fail the load: %v", err)
			}
			got := strings.Join(plan.Warnings, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("warnings %q, want %q", got, tc.want)
			}
			if strings.Contains(got, ":pw@") {
				t.Errorf("the warning shows the URL's password: %s", got)
			}
		})
	}
}
