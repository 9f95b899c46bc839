package wire_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
	"casesync/internal/wire"
)

// Tests of the request/response flow features (issue 18) on a spec loaded
// from CUE, wired to a small HTTP server, a real state file and the REST
// connector: a secret in a request body, failure classification, after-
// steps that run on failure with $outcome, and filters over the delivery.

const flowSpec = `package flow

secrets: ["API_KEY"]
connectors: api: {base_url: "http://placeholder.invalid", retry: max_attempts: 1}
pipelines: p: {
	source: {connector: "api", path: "/unused", key: ".id"}
	filter: [{expr: #"delivery == nil || delivery.event in ["case.create", "case.post"]"#, reason: "not_a_sync_event"}]
	enrich: [{
		name: "person", connector: "api"
		request: path: "/people/{.id}"
		classify: [{status: [404], body: #".error.code == "MODEL_NOT_FOUND""#, reason: "not_found", class: "skip"}]
	}]
	map: {
		id: jq: ".id"
		name: jq: ".person.name"
		key: secret: "API_KEY"
	}
	upsert: {
		connector: "api", key: ".id", idempotent: true, unchanged: "never"
		create: {method: "PUT", path: "/cases/{.id}", body: jq: "."}
		classify: [{status: [409], reason: "conflict", class: "permanent"}]
	}
	after: [{
		name: "status", connector: "api"
		on: ["written", "skipped", "failed"]
		when: #"outcome.action != "skipped" || outcome.reason == "not_found""#
		request: {
			method: "PATCH", path: "/status/{$record.id}"
			body: fields: status: jq: #"if $outcome.action == "skipped" then $outcome.reason elif $outcome.action == "failed" then "failed" else "synced" end"#
		}
	}]
}
`

type flowServer struct {
	mu    sync.Mutex
	calls []string
	puts  map[string]map[string]any
}

func (s *flowServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	s.calls = append(s.calls, r.Method+" "+r.URL.Path+statusOf(body))
	if r.Method == http.MethodPut {
		s.puts[r.URL.Path] = body
	}
	s.mu.Unlock()
	id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(id, "missing"):
		w.WriteHeader(404)
		w.Write([]byte(`{"error":{"statusCode":404,"code":"MODEL_NOT_FOUND","message":"Unknown id"}}`))
	case r.Method == http.MethodGet && id == "broken":
		w.WriteHeader(500)
		w.Write([]byte(`{"error":{"statusCode":500,"message":"boom"}}`))
	case r.Method == http.MethodGet:
		json.NewEncoder(w).Encode(map[string]any{"name": "N-" + id})
	case r.Method == http.MethodPut && id == "refused":
		w.WriteHeader(409)
		w.Write([]byte(`{"message":"conflict"}`))
	case r.Method == http.MethodPatch && (id == "wbfail" || id == "missing2"):
		w.WriteHeader(500)
		w.Write([]byte(`{"message":"down"}`))
	default:
		w.Write([]byte(`{"ok":true}`))
	}
}

func statusOf(body map[string]any) string {
	if s, ok := body["status"].(string); ok {
		return " " + s
	}
	return ""
}

type secretsMap map[string]string

func (m secretsMap) Secret(n string) (string, bool) { v, ok := m[n]; return v, ok }

func TestFlow_ClassifyAfterOnFailureDeliverySecret(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flow.cue"), []byte(flowSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := &flowServer{puts: map[string]map[string]any{}}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dep, err := wire.OpenDir(dir, wire.LoadOptions{BaseURLs: map[string]string{"api": srv.URL}},
		wire.Options{StatePath: filepath.Join(t.TempDir(), "s.db"), Secrets: secretsMap{"API_KEY": "k-123"}, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer dep.Close()
	rec := func(id string) any { return map[string]any{"id": id} }
	ev := func(e string) any { return map[string]any{"event": e} }
	res, err := dep.Runner.Sync(context.Background(), "p", engine.SyncOptions{
		Records: []any{rec("found"), rec("missing"), rec("broken"), rec("refused"), rec("wbfail"), rec("echo"), rec("missing2")},
		Deliveries: map[string]any{"found": ev("case.post"), "missing": ev("case.create"), "broken": ev("case.post"),
			"refused": ev("case.post"), "wbfail": ev("case.post"), "echo": ev("case.update"), "missing2": ev("case.post")},
	})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := dep.State.Outcomes(context.Background(), res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, o := range outs {
		got[o.RecordKey] = string(o.Action) + " " + o.Reason + " " + string(o.Class)
	}
	want := map[string]string{
		"found":   "created  ",
		"missing": "skipped not_found ",
		"broken":  "failed enrich_person retryable",
		"refused": "failed conflict permanent",
		"wbfail":  "failed after retryable",
		"echo":    "skipped not_a_sync_event ",
		// The not_found write-back itself failed: recorded, tried once.
		"missing2": "failed after_failed retryable",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	sort.Strings(fs.calls)
	wantCalls := []string{
		"GET /people/broken", "GET /people/found", "GET /people/missing", "GET /people/missing2", "GET /people/refused", "GET /people/wbfail",
		"PATCH /status/broken failed", "PATCH /status/found synced", "PATCH /status/missing not_found", "PATCH /status/missing2 not_found",
		"PATCH /status/refused failed", "PATCH /status/wbfail synced",
		"PUT /cases/found", "PUT /cases/refused", "PUT /cases/wbfail",
	}
	if diff := cmp.Diff(wantCalls, fs.calls); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	// Logs and stored errors name requests by their templates: no record
	// id in a URL.
	all := logs.String()
	for _, o := range outs {
		all += o.Error
	}
	if !strings.Contains(all, "/people/{.id}") || !strings.Contains(all, "/status/{$record.id}") {
		t.Errorf("logs do not name the request templates:\n%s", all)
	}
	for _, id := range []string{"found", "missing", "broken", "refused", "wbfail"} {
		for _, p := range []string{"/people/" + id, "/cases/" + id, "/status/" + id} {
			if strings.Contains(all, p) {
				t.Errorf("a record id reached the logs or an error: %s", p)
			}
		}
	}
	if strings.Contains(all, "k-123") {
		t.Error("the body secret reached the logs")
	}
	// The secret reached the server as its value; the state and the
	// payload hash only ever saw its name.
	if k := fs.puts["/cases/found"]["key"]; k != "k-123" {
		t.Errorf("body key = %v, want the secret's value", k)
	}
}

const normalizeSpec = `package flow

connectors: api: {base_url: "http://placeholder.invalid", normalize: {drop_nulls: true}}
pipelines: p: {
	source: {connector: "api", path: "/unused", key: ".id"}
	map: {
		id: jq: ".id"
		gone: jq: ".nothing"
		nested: fields: {kept: const: 1, dropped: jq: ".nothing"}
	}
	upsert: {connector: "api", key: ".id", idempotent: true, create: {method: "PUT", path: "/cases/{.id}", body: jq: "."}}
}
`

// Dry-run shows the body byte for byte as the connector sends it: the
// connector's normalize rules applied.
func TestFlow_DryRunShowsNormalizedBody(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "flow.cue"), []byte(normalizeSpec), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var sent []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent, _ = io.ReadAll(r.Body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	dep, err := wire.OpenDir(dir, wire.LoadOptions{BaseURLs: map[string]string{"api": srv.URL}},
		wire.Options{StatePath: filepath.Join(t.TempDir(), "s.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer dep.Close()
	recs := []any{map[string]any{"id": "r1"}}
	var shown []byte
	_, err = dep.Runner.Sync(context.Background(), "p", engine.SyncOptions{Records: recs, DryRun: func(d engine.Decision) {
		shown, _ = json.Marshal(d.Request.Body)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dep.Runner.Sync(context.Background(), "p", engine.SyncOptions{Records: recs}); err != nil {
		t.Fatal(err)
	}
	if string(shown) != string(sent) || strings.Contains(string(sent), "null") {
		t.Errorf("dry-run showed %s, the connector sent %s", shown, sent)
	}
}
