package spec_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/engine/spec"
)

// TestCheck_Messages pins the code and the whole message of each kind of
// problem CUE finds. Codes and messages are derived from the error's path
// and from what the schema and the user's value hold there, never from
// CUE's wording, so a CUE upgrade that changes its errors' structure (not
// just their text) fails here first. Messages say the rule in the spec's
// terms, not CUE's ("conflicting values", "{jq?:#JQ,…}").
func TestCheck_Messages(t *testing.T) {
	const pipeline = `
connectors: api: base_url: "http://localhost:1"
pipelines: p: {
	source: {connector: "api", path: "/items", key: ".id"}
	map: id: jq: ".id"
	upsert: {connector: "api", key: ".id", idempotent: true, create: {method: "POST", path: "/items"}}
}
`
	tests := []struct {
		name  string
		files map[string]string
		want  string // "code: message" of the one problem; a trailing … matches the rest
	}{
		{"an enum names every allowed value", map[string]string{"a.cue": pipeline + `lookups: sex: {values: {m: "male"}, on_miss: "nul"}`},
			"bad-value: on_miss must be one of fail, null, skip, default, not nul"},
		{"a string where a number goes", map[string]string{"a.cue": pipeline + `pipelines: p: max_attempts: "1"`},
			"wrong-type: max_attempts must be a whole number, not a string"},
		{"a number where a mapped value goes", map[string]string{"a.cue": pipeline + `pipelines: p: map: n: 8`},
			"wrong-type: n must be an object with jq, expr, const, fields, each, map, secret, default, omit_empty, merge_key, not a whole number"},
		{"a string where a list goes", map[string]string{"a.cue": pipeline + `secrets: "TOKEN"`},
			"wrong-type: secrets must be a list […], not a string"},
		{"a secret name breaks its rule", map[string]string{"a.cue": pipeline + `secrets: ["token"]`},
			"bad-value: secrets[0] must be UPPER_CASE: capital letters, digits and _, starting with a letter, not token"},
		{"a connector reference breaks the name rule", map[string]string{"a.cue": pipeline + `pipelines: p: enrich: [{name: "e", connector: "Api", request: path: "/e"}]`},
			"bad-value: connector must be lowercase letters, digits and _, starting with a letter, not Api"},
		{"a pipeline name breaks the name rule", map[string]string{"a.cue": pipeline + `pipelines: "my pipe": pipelines.p`},
			`bad-name: pipeline name "my pipe" must be lowercase letters, digits and _, starting with a letter`},
		{"a number's bounds", map[string]string{"a.cue": pipeline + `connectors: api: concurrency: 0`},
			"bad-value: concurrency must be a whole number of at least 1, not 0"},
		{"a URL's scheme", map[string]string{"a.cue": strings.Replace(pipeline, "http://localhost:1", "ftp://localhost:1", 1)},
			"bad-value: base_url must be a URL starting with https:// (or http://), not ftp://localhost:1"},
		{"the end of a jq program", map[string]string{"a.cue": pipeline + `pipelines: p: map: n: jq: ".a |"`},
			"bad-jq: the program ends too early (an unclosed bracket or a dangling |?)"},
		{"a duration", map[string]string{"a.cue": pipeline + `connectors: api: timeout: "5 minutes"`},
			"bad-duration: timeout must be a duration such as 500ms, 30s, 5m or 1h30m, not 5 minutes"},
		{"a misspelt field lists the fields", map[string]string{"a.cue": pipeline + `connectors: api: retyr: {}`},
			"unknown-field: retyr is not a field here (fields: auth, base_url, concurrency, headers, …"}, // the list grows with the schema
		{"a required field", map[string]string{"a.cue": strings.Replace(pipeline, `, key: ".id"}`, `}`, 1)},
			"missing-field: key is required here"},
		{"a value left open", map[string]string{"a.cue": pipeline + `pipelines: p: description: string`},
			"incomplete: description has no concrete value: give it one"},
		{"a password written out", map[string]string{"a.cue": pipeline + `connectors: api: auth: basic: {username: "u", password: "hunter2"}`},
			"inline-secret: a secret value is written in the spec"},
		{"an import not used", map[string]string{"a.cue": "import prim \"casesync.example/lib/primero\"\n" + pipeline},
			"unused-import: import prim (casesync.example/lib/primero) is not used: remove it"},
		{"an import that does not exist", map[string]string{"a.cue": "import prim \"casesync.example/lib/nope\"\n" + pipeline + "x: prim.Y\n"},
			"load: cannot find package casesync.example/lib/nope: check the import path"},
		{"a reference to a library field that does not exist", map[string]string{"a.cue": "import prim \"casesync.example/lib/primero\"\n" + pipeline + "pipelines: p: source: prim.Casez\n"},
			"undefined-reference: prim.Casez is not defined: check the spelling and the import"},
		{"a field named as the import it refers to", map[string]string{"a.cue": "import kh \"casesync.example/lib/cambodia\"\n" + pipeline + "jq_defs: kh: kh.NCDD\npipelines: p: filter: [kh.Consent]\n"},
			"undefined-reference: kh here is the field kh itself (CUE looks a name up from the inside out), not an import or field of that name further out: give the field another name"},
		{"a reference to nothing", map[string]string{"a.cue": pipeline + "pipelines: p: description: nosuch\n"},
			"undefined-reference: nosuch is not defined: check the spelling and the import"},
		{"one field, two values, two files", map[string]string{"a.cue": pipeline, "b.cue": "package deploy\n\nconnectors: api: base_url: \"http://localhost:2\"\n"},
			"conflict: base_url is http://localhost:1 at a.cue:4 but http://localhost:2 at b.cue:3: keep one"},
		{"a library's value changed by the deployment", map[string]string{"a.cue": "import prim \"casesync.example/lib/primero\"\n" + pipeline +
			"secrets: prim.Secrets\nconnectors: primero: prim.Connector & {base_url: \"https://p.example.org\", retry: max_attempts: 8}\n"},
			"conflict: max_attempts is 8 at a.cue:12 but 5 at ../lib/primero/primero.cue:…"}, // the library's line moves with its edits
		{"expr's token names", map[string]string{"a.cue": pipeline + `pipelines: p: filter: [{expr: "record.a = 1", reason: "a"}]`},
			`bad-expr: unexpected token "=" (compare with ==)`},
		{"a vars key", map[string]string{"a.cue": pipeline + `vars: mobile: "0"` + "\n" + `pipelines: p: map: m: jq: "$vars.mobil"`},
			`unknown-var: vars has no key "mobil" (it has: mobile)`},
		{"a file without a package clause", map[string]string{"a.cue": pipeline, "b.cue": "vars: x: 1\n"},
			"no-package: b.cue has no package clause, so nothing in it is loaded: start it with `package deploy`"},
	}
	root := t.TempDir()
	copyDir(t, "../../specs/cue.mod", filepath.Join(root, "cue.mod"))
	copyDir(t, "../../specs/lib", filepath.Join(root, "lib"))
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(root, "d"+string(rune('a'+i)))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, src := range tc.files {
				if name == "a.cue" {
					src = "package deploy\n\n" + src
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := spec.Load(dir, spec.Options{Cwd: dir})
			ps, ok := err.(spec.Problems)
			if !ok || len(ps) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			got := ps[0].Code + ": " + ps[0].Msg
			if prefix, ok := strings.CutSuffix(tc.want, "…"); ok && strings.HasPrefix(got, prefix) {
				return
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
