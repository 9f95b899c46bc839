package spectest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/engine"
	"casesync/engine/spec"
)

// TestShippedDeployments runs every shipped deployment's spec tests (what
// engine test specs/... runs), and that every pipeline has one.
func TestShippedDeployments(t *testing.T) {
	dirs, err := spec.Deployments("../../specs")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			plan, results, err := RunDir(context.Background(), dir, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			tested := map[string]bool{}
			for _, fr := range results {
				if !fr.Passed() {
					t.Errorf("%s failed:\n%s", fr.Path, report(fr))
				}
				if fr.Result != nil {
					tested[fr.Result.Test.Pipeline] = true
				}
			}
			// Every shipped pipeline has a spec test: a new deployment or
			// pipeline comes with one (write its records and answers, run
			// engine test --update, review what it wrote).
			for _, name := range plan.Order {
				if !tested[name] {
					t.Errorf("%s: pipeline %s has no spec test: add %s/tests/%s.txtar (engine test --help)", dir, name, dir, name)
				}
			}
		})
	}
}

func report(fr FileResult) string {
	var b strings.Builder
	for _, p := range fr.Problems {
		b.WriteString(p.Error() + "\n")
	}
	if fr.Err != nil {
		b.WriteString(fr.Err.Error() + "\n")
	}
	if fr.Result != nil {
		for _, p := range fr.Result.Problems {
			b.WriteString(p + "\n")
		}
		for _, d := range fr.Result.Diffs {
			b.WriteString(d.String() + "\n")
		}
	}
	return b.String()
}

// copyExample copies the shipped specs to a temporary folder, so a test
// may break a spec or rewrite a test file.
func copyExample(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS("../../specs")); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dst, "example")
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A broken map field fails the test with a diff naming the field and its
// spec position; --update then rewrites only the expectations it changed.
func TestBrokenFieldAndUpdate(t *testing.T) {
	dir := copyExample(t)
	editFile(t, filepath.Join(dir, "referrals.cue"), `given_name: jq:          ".name_first"`, `given_name: jq:          ".name_last"`)
	testFile := filepath.Join(dir, "tests", "cases_to_oscar.txtar")
	before, _ := os.ReadFile(testFile)

	_, results, err := RunDir(context.Background(), dir, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0].Passed() {
		t.Fatalf("want one failing test file, got %+v", results)
	}
	diffs := results[0].Result.Diffs
	if len(diffs) != 2 {
		t.Fatalf("want a diff for each of the two sent records, got %v", diffs)
	}
	d := diffs[0]
	if d.Record != "9f0c-1001" || d.Path != "request.body.organization.given_name" || d.Want != `"Sokha"` || d.Got != `"Chan"` {
		t.Errorf("diff = %+v", d)
	}
	want := fmt.Sprintf("map field given_name at %s:%d:3", filepath.Join(dir, "referrals.cue"), lineOf(t, filepath.Join(dir, "referrals.cue"), "given_name: jq:"))
	if !strings.HasPrefix(d.Field, "map field given_name at ") || !strings.HasSuffix(d.Field, strings.TrimPrefix(want, "map field given_name at "+root(dir))) {
		t.Errorf("diff names %q, want %q", d.Field, want)
	}

	_, results, err = RunDir(context.Background(), dir, nil, true)
	if err != nil || results[0].Updated != 2 || !results[0].Passed() {
		t.Fatalf("update: err %v, updated %d, passed %v", err, results[0].Updated, results[0].Passed())
	}
	after, _ := os.ReadFile(testFile)
	changed := lineDiff(string(before), string(after))
	if len(changed) != 2 || !strings.Contains(changed[0], `"given_name": "Chan"`) || !strings.Contains(changed[1], `"given_name": "Keo"`) {
		t.Errorf("update changed lines %q, want only the two given_name lines", changed)
	}
	_, results, _ = RunDir(context.Background(), dir, nil, false)
	if !results[0].Passed() {
		t.Errorf("after update the test still fails: %s", report(results[0]))
	}
}

func lineOf(t *testing.T, path, text string) int {
	b, _ := os.ReadFile(path)
	for i, ln := range strings.Split(string(b), "\n") {
		if strings.Contains(ln, text) {
			return i + 1
		}
	}
	t.Fatalf("%s has no %q", path, text)
	return 0
}

// root is the temporary folder part of dir: positions are relative to
// the working directory, so only the part from the deployment on is
// compared.
func root(dir string) string { return filepath.Dir(dir) }

// lineDiff lists the lines of b that differ from a's at the same place
// (the files keep their line count when only values change).
func lineDiff(a, b string) []string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	if len(al) != len(bl) {
		return []string{"line count changed"}
	}
	var out []string
	for i := range al {
		if al[i] != bl[i] {
			out = append(out, bl[i])
		}
	}
	return out
}

func TestParseProblems(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"no pipeline", "-- source.json --\n[]\n", "no \"pipeline: NAME\""},
		{"no source", "pipeline: p\n", "no source.json section"},
		{"bad json", "pipeline: p\n-- source.json --\n[{\n", "source.json: not JSON"},
		{"bad status", "pipeline: p\n-- source.json --\n[]\n-- answer GET /x 99 --\n{}\n", "status \"99\""},
		{"bad section", "pipeline: p\n-- source.json --\n[]\n-- answers GET /x --\n{}\n", "unknown section \"answers GET /x\""},
		{"bad expect", "pipeline: p\n-- source.json --\n[]\n-- expect k --\n{\"decison\": \"create\"}\n", "expect k: not an expectation"},
		{"bad now", "pipeline: p\nnow: tomorrow\n-- source.json --\n[]\n", "now: \"tomorrow\""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ps := Parse("t.txtar", []byte(c.text))
			if len(ps) != 1 || !strings.Contains(ps[0].Error(), c.want) {
				t.Errorf("problems %v, want one containing %q", ps, c.want)
			}
		})
	}
}

func TestAnswerMatching(t *testing.T) {
	text := `pipeline: p
-- source.json --
[]
-- answer GET /api/v2/cases/{$key} --
"any case"
-- answer GET /api/v2/cases/{id}/referrals --
"referrals"
-- answer GET /api/v2/cases/c-1 --
"case one"
-- answer GET /api/v2/users?user_name=agency-{org}-user --
"agency user"
-- answer GET /api/v1/status/{t} --
"pending"
-- answer GET /api/v1/status/{t} --
"done"
`
	tst, ps := Parse("t.txtar", []byte(text))
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	r := newRemote(nil, tst)
	cases := []struct {
		method, path string
		query        map[string]string
		want         any
	}{
		{"GET", "/api/v2/cases/c-2", nil, "any case"},
		{"GET", "/api/v2/cases/c-1", nil, "case one"},
		{"GET", "/api/v2/cases/c-2/referrals", nil, "referrals"},
		{"GET", "/api/v2/users", map[string]string{"user_name": "agency-cif-user"}, "agency user"},
		{"GET", "/api/v2/users", map[string]string{"user_name": "someone"}, nil},
		{"POST", "/api/v2/cases/c-1", nil, nil},
		{"GET", "/api/v1/status/7", nil, "pending"},
		{"GET", "/api/v1/status/7", nil, "done"},
		{"GET", "/api/v1/status/7", nil, "done"},
	}
	for _, c := range cases {
		a, ok := r.answer(&engine.CallPreview{Method: c.method, Path: c.path, Query: c.query})
		var got any
		if ok {
			got = a.Body
		}
		if got != c.want {
			t.Errorf("%s %s %v: answered %v, want %v", c.method, c.path, c.query, got, c.want)
		}
	}
}

// A remote refusal that echoes a child's name keeps the failure's reason,
// but the name never reaches the outcome's error (what the state stores
// and logs print): the deployment classifies it.
func TestClassifiedValuesLeaveNoError(t *testing.T) {
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "cue.mod"), os.DirFS("../../specs/cue.mod")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "deploy")
	os.MkdirAll(filepath.Join(dir, "tests"), 0o755)
	cue := `package deploy

sensitivity: {name_first: "pii", diagnosis: "health"}
connectors: api: base_url: "https://api.example.org"
pipelines: p: {
	source: {connector: "api", path: "/items", key: ".id"}
	map: {id: jq: ".id", given: jq: ".name_first", dx: jq: ".diagnosis"}
	upsert: {connector: "api", key: ".id", idempotent: true, create: {method: "POST", path: "/items", body: jq: ".", ok: ".ok", refusal: ".message"}}
}
`
	test := `pipeline: p
-- source.json --
{"id": "r-1", "name_first": "Sokha", "diagnosis": "tuberculosis"}
-- answer POST /items --
{"ok": false, "message": "Sokha: tuberculosis is not a known condition"}
-- expect r-1 --
{"decision": "fail", "reason": "not_ok", "request": {"method": "POST", "path": "/items", "body": {"id": "r-1", "given": "Sokha", "dx": "tuberculosis"}}}
`
	os.WriteFile(filepath.Join(dir, "a.cue"), []byte(cue), 0o644)
	os.WriteFile(filepath.Join(dir, "tests", "refusal.txtar"), []byte(test), 0o644)
	_, results, err := RunDir(context.Background(), dir, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if !results[0].Passed() {
		t.Fatalf("test failed:\n%s", report(results[0]))
	}
	got := results[0].Result.Errors["r-1"]
	if strings.Contains(got, "Sokha") || strings.Contains(got, "tuberculosis") || !strings.Contains(got, "[pii]: [health] is not a known condition") {
		t.Errorf("outcome error %q: want the remote's reason with the classified values replaced", got)
	}
}
