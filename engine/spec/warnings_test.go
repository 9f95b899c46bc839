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
			got := loadWarnings(t, "package deploy\n\nconnectors: api: base_url: \""+tc.url+`"
pipelines: p: {
	source: {connector: "api", path: "/items", key: ".id"}
	map: id: jq: ".id"
	upsert: {connector: "api", key: ".id", idempotent: true, create: {method: "POST", path: "/items"}}
}
`)
			wantWarning(t, got, tc.want)
			if strings.Contains(got, ":pw@") {
				t.Errorf("the warning shows the URL's password: %s", got)
			}
		})
	}
}

// TestLoad_WarnsOnUnclassifiedField: a mapped field that sends a
// class-bearing source field (date_of_birth) without a class in the
// deployment's sensitivity block is a warning at the map field; a class
// on either name, or "none", silences it.
func TestLoad_WarnsOnUnclassifiedField(t *testing.T) {
	tests := []struct {
		name, sensitivity, field, want string
	}{
		{"source name", ``, `born: jq: ".date_of_birth"`, `a.cue:9:7: pipelines.p.map.born: unclassified-field: born sends date_of_birth, which looks like pii data but has no class`},
		{"target name", ``, `date_of_birth: jq: ".born_text"`, `pipelines.p.map.date_of_birth: unclassified-field: date_of_birth looks like pii data`},
		{"health", ``, `dx: jq: ".diagnosis"`, `dx sends diagnosis, which looks like health data`},
		{"nested", ``, `child: fields: given: jq: ".name_first"`, `pipelines.p.map.child.fields.given: unclassified-field`},
		{"source classified", `sensitivity: date_of_birth: "pii"`, `born: jq: ".date_of_birth"`, ``},
		{"target classified", `sensitivity: born: "pii"`, `born: jq: ".date_of_birth"`, ``},
		{"declared none", `sensitivity: date_of_birth: "none"`, `born: jq: ".date_of_birth"`, ``},
		{"not personal", ``, `org: jq: ".organization_name"`, ``},
		{"a var is no source field", ``, `fallback: jq: "$vars.default_mobile"`, ``},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := loadWarnings(t, "package deploy\n\n"+tc.sensitivity+`
connectors: api: base_url: "https://api.example.org"
vars: default_mobile: "0"
pipelines: p: {
	source: {connector: "api", path: "/items", key: ".id"}
	map: id: jq: ".id"
	map: `+tc.field+`
	upsert: {connector: "api", key: ".id", idempotent: true, create: {method: "POST", path: "/items"}}
}
`)
			wantWarning(t, got, tc.want)
		})
	}
}

// loadWarnings loads a one-file deployment (a.cue) with the shipped CUE
// module beside it and returns its warnings, one per line; a warning
// never fails the load.
func loadWarnings(t *testing.T, cue string) string {
	t.Helper()
	root := t.TempDir()
	copyDir(t, "../../specs/cue.mod", filepath.Join(root, "cue.mod"))
	dir := filepath.Join(root, "deploy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.cue"), []byte(cue), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := spec.Load(dir, spec.Options{Cwd: dir})
	if err != nil {
		t.Fatalf("a warning must not fail the load: %v", err)
	}
	return strings.Join(plan.Warnings, "\n")
}

// wantWarning checks warnings against want: none when want is "", else
// some containing it.
func wantWarning(t *testing.T, got, want string) {
	t.Helper()
	if (want == "") != (got == "") || !strings.Contains(got, want) {
		t.Errorf("warnings %q, want %q", got, want)
	}
}
