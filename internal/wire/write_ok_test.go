package wire_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"casesync/engine"
	"casesync/engine/mapping"
	"casesync/internal/wire"
)

// Tests of a write's ok check (upsert create/update ok, after ok) and of a
// failed asynchronous job leaving no link, on a hand-built plan wired to a
// small HTTP server, a real state file and the REST connector.

// okServer serves the plan's list at GET /list and answers every other
// request with the body handle returns for its method, path and JSON body.
type okServer struct {
	list   []any
	handle func(method, path string, body map[string]any) any
	mu     sync.Mutex
	calls  []string
}

func (c *okServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path == "/list" {
		json.NewEncoder(w).Encode(c.list)
		return
	}
	c.mu.Lock()
	c.calls = append(c.calls, r.Method+" "+r.URL.Path)
	c.mu.Unlock()
	var body map[string]any
	json.NewDecoder(r.Body).Decode(&body)
	json.NewEncoder(w).Encode(c.handle(r.Method, r.URL.Path, body))
}

// okOutcome is a record's outcome with the link the state keeps for it.
type okOutcome struct {
	engine.Outcome
	Link string
}

func okOpen(t *testing.T, plan *engine.Plan, c *okServer) *wire.Deployment {
	t.Helper()
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	plan.Connectors = map[string]*engine.Connector{"api": {Name: "api", Spec: engine.ConnectorSpec{BaseURL: srv.URL}}}
	dep, err := wire.Open(plan, wire.Options{StatePath: filepath.Join(t.TempDir(), "state.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dep.Close() })
	dep.Runner.Sleep = func(context.Context, time.Duration) error { return nil }
	return dep
}

func okJQ(t *testing.T, src string) *mapping.JQ {
	t.Helper()
	j, err := mapping.CompileJQ(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func okTemplate(t *testing.T, src string) *mapping.Template {
	t.Helper()
	tp, err := mapping.CompileTemplate(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// okPlan: records {id, answer} are written with POST /write; the fake
// answers {"status": answer}. create.ok holds for "ok" answers.
func okPlan(t *testing.T, after []engine.After) *engine.Plan {
	req := func(method, path string) *engine.Request {
		return &engine.Request{Method: method, Path: okTemplate(t, path), Body: &mapping.Value{JQ: okJQ(t, ".")}}
	}
	p := &engine.Pipeline{
		Name: "p",
		Source: engine.PipelineSource{Connector: "api", Request: engine.Request{Method: "GET", Path: okTemplate(t, "/list")},
			Key: okJQ(t, ".id")},
		Map: &mapping.Mapping{Fields: []mapping.Field{
			{Name: "id", Value: &mapping.Value{JQ: okJQ(t, ".id")}},
			{Name: "answer", Value: &mapping.Value{JQ: okJQ(t, ".answer")}},
		}},
		Upsert: engine.Upsert{Connector: "api", Key: okJQ(t, ".id"), Mode: "upsert",
			Create: req("POST", "/write"), CreateID: okJQ(t, ".txn"), CreateTxn: okJQ(t, ".txn"),
			CreateCheck: engine.AnswerCheck{OK: okJQ(t, `.status == "ok"`)}, Unchanged: "hash", Idempotent: true},
		After:       after,
		MaxAttempts: 5,
		Concurrency: 1,
	}
	return &engine.Plan{Name: "t", Lookups: mapping.NewRegistry(), Pipelines: map[string]*engine.Pipeline{"p": p}, Order: []string{"p"}}
}

func runOK(t *testing.T, plan *engine.Plan, c *okServer) map[string]okOutcome {
	t.Helper()
	dep := okOpen(t, plan, c)
	ctx := context.Background()
	res, err := dep.Runner.Sync(ctx, "p", engine.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	outs, err := dep.State.Outcomes(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]okOutcome{}
	for _, o := range outs {
		link, _, err := dep.State.FindLink(ctx, "api", o.RecordKey, "api")
		if err != nil {
			t.Fatal(err)
		}
		got[o.RecordKey] = okOutcome{Outcome: o, Link: link}
	}
	return got
}

func TestRunner_CreateOK(t *testing.T) {
	c := &okServer{
		list: []any{map[string]any{"id": "a", "answer": "ok"}, map[string]any{"id": "b", "answer": "Failed"}},
		handle: func(_, _ string, body map[string]any) any {
			return map[string]any{"status": body["answer"], "txn": "t-" + body["id"].(string)}
		},
	}
	got := runOK(t, okPlan(t, nil), c)
	if o := got["a"]; o.Action != engine.ActionCreated || o.Link != "t-a" {
		t.Errorf("a: %+v, want created and linked to t-a", o)
	}
	if o := got["b"]; o.Action != engine.ActionFailed || o.Reason != "not_ok" || o.Class != engine.ClassPermanent || o.Link != "" {
		t.Errorf("b: %+v, want failed not_ok permanent without a link", o)
	}
}

// TestRunner_CreateRefusal: a write whose answer fails ok keeps the reason
// the refusal program reads from that answer, as text, bounded.
func TestRunner_CreateRefusal(t *testing.T) {
	long := strings.Repeat("é", 400)
	tests := []struct {
		name, answer, refusal, want string
	}{
		{"a message", "No such intervention", ".status", ": No such intervention"},
		{"not a string", "x", "[.status, 1]", `: ["x",1]`},
		{"long, cut on a character", long, ".status", ": " + strings.Repeat("é", 150) + "…"},
		{"no refusal program", "x", "", " (ok does not hold)"},
		{"refusal program fails", "x", ".status | error", " (ok does not hold)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &okServer{
				list: []any{map[string]any{"id": "b", "answer": tc.answer}},
				handle: func(_, _ string, body map[string]any) any {
					return map[string]any{"status": body["answer"], "txn": "t"}
				},
			}
			plan := okPlan(t, nil)
			if tc.refusal != "" {
				plan.Pipelines["p"].Upsert.CreateCheck.Refusal = okJQ(t, tc.refusal)
			}
			o := runOK(t, plan, c)["b"]
			if o.Reason != "not_ok" || !strings.HasSuffix(o.Error, "the answer reports a failure"+tc.want) {
				t.Errorf("outcome %s %q, want not_ok ending %q", o.Reason, o.Error, tc.want)
			}
		})
	}
}

func TestRunner_AfterOK(t *testing.T) {
	c := &okServer{
		list: []any{map[string]any{"id": "a", "answer": "ok"}},
		handle: func(_, path string, _ map[string]any) any {
			if path == "/ack" {
				return map[string]any{"items": []any{map[string]any{"Status": "Failed"}}}
			}
			return map[string]any{"status": "ok", "txn": "t-a"}
		},
	}
	after := []engine.After{{Name: "ack", Connector: "api", Request: engine.Request{Method: "POST", Path: okTemplate(t, "/ack")},
		Check: engine.AnswerCheck{OK: okJQ(t, `all(.items[]; .Status == "Succeeded")`)}}}
	got := runOK(t, okPlan(t, after), c)
	o := got["a"]
	if o.Action != engine.ActionFailed || o.Reason != "after" || o.Class != engine.ClassPermanent {
		t.Errorf("a: %+v, want failed in the after-step, permanent", o)
	}
	if o.Link != "t-a" {
		t.Errorf("a: link %+v, want the written target kept", o.Link)
	}
}

// A job the remote reports failed wrote nothing: no link, so the retry
// creates again; a job that only timed out keeps its link.
func TestRunner_PollFailedKeepsNoLink(t *testing.T) {
	states := map[string]string{"a": "Failed", "b": "Running", "c": "Done"}
	c := &okServer{
		list: []any{map[string]any{"id": "a", "answer": "ok"}, map[string]any{"id": "b", "answer": "ok"}, map[string]any{"id": "c", "answer": "ok"}},
		handle: func(_, path string, body map[string]any) any {
			if path == "/write" {
				return map[string]any{"status": "ok", "txn": body["id"]}
			}
			return map[string]any{"state": states[path[len("/status/"):]]}
		},
	}
	status := engine.Request{Method: "GET", Path: okTemplate(t, "/status/{$transaction}")}
	after := []engine.After{{Name: "wait", Connector: "api", Request: status, Poll: &engine.Poll{
		Request: status, Status: okJQ(t, ".state"), Done: map[string]bool{"Done": true}, Failed: map[string]bool{"Failed": true},
		Interval: time.Millisecond, Timeout: 0}}}
	got := runOK(t, okPlan(t, after), c)
	if o := got["a"]; o.Action != engine.ActionFailed || o.Link != "" {
		t.Errorf("a (job failed): %+v, want failed with no link", o)
	}
	if o := got["b"]; o.Action != engine.ActionFailed || o.Link != "b" {
		t.Errorf("b (poll timed out): %+v, want failed with the link kept", o)
	}
	if o := got["c"]; o.Action != engine.ActionCreated || o.Link == "" {
		t.Errorf("c (job done): %+v, want created and linked", o)
	}
}

// A dry run writes nothing, so it runs no after-step either.
func TestRunner_DryRunSkipsAfterSteps(t *testing.T) {
	c := &okServer{
		list:   []any{map[string]any{"id": "a", "answer": "ok"}},
		handle: func(string, string, map[string]any) any { return map[string]any{"status": "ok", "txn": "t-a"} },
	}
	after := []engine.After{{Name: "ack", Connector: "api", Request: engine.Request{Method: "POST", Path: okTemplate(t, "/ack")}}}
	r := okOpen(t, okPlan(t, after), c).Runner
	var got []engine.Decision
	if _, err := r.Sync(context.Background(), "p", engine.SyncOptions{DryRun: func(d engine.Decision) { got = append(got, d) }}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Action != engine.ActionCreated || got[0].Request == nil {
		t.Errorf("decisions %+v, want one create previewed", got)
	}
	if len(c.calls) != 0 {
		t.Errorf("a dry run sent %v", c.calls)
	}
}
