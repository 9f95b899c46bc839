package engine_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"casesync/engine"
	"casesync/engine/mapping"
)

// Tests of a write's ok check (upsert create/update ok, after ok) and of a
// failed asynchronous job leaving no link, on a hand-built plan with an
// in-memory caller and state.

// okState keeps what the runner commits; methods the runner does not call
// stay unimplemented (the embedded nil interface).
type okState struct {
	engine.State
	mu       sync.Mutex
	outcomes []engine.Outcome
	links    map[string]string
}

func (s *okState) StartRun(context.Context, string, string, string, time.Time) (int64, error) {
	return 1, nil
}
func (s *okState) FinishRun(context.Context, int64, string, engine.Counts, string, time.Time) error {
	return nil
}
func (s *okState) Cursor(context.Context, string) (string, bool, error) { return "", false, nil }
func (s *okState) Record(context.Context, string, string) (engine.RecordState, bool, error) {
	return engine.RecordState{}, false, nil
}
func (s *okState) DueRetries(context.Context, string, time.Time, int) ([]engine.RetryItem, error) {
	return nil, nil
}
func (s *okState) FindLink(_ context.Context, _, idA, _ string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.links[idA]
	return id, ok, nil
}
func (s *okState) CommitPage(_ context.Context, c engine.PageCommit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range c.Outcomes {
		s.outcomes = append(s.outcomes, o)
		if o.Link != nil {
			s.links[o.Link.IDA] = o.Link.IDB
		}
	}
	return nil
}

// okCaller answers every call with the body its handler returns.
type okCaller struct {
	list   []any
	handle func(c *engine.Call) any
	mu     sync.Mutex
	calls  []string
}

func (c *okCaller) Do(_ context.Context, call *engine.Call) (*engine.Response, error) {
	c.mu.Lock()
	c.calls = append(c.calls, call.Method+" "+call.Path)
	c.mu.Unlock()
	return &engine.Response{Status: 200, Body: c.handle(call)}, nil
}
func (c *okCaller) List(_ context.Context, _ *engine.Call, fn func(*engine.Page) error) error {
	return fn(&engine.Page{Number: 1, Records: c.list, Total: len(c.list)})
}
func (c *okCaller) Close() error { return nil }

type okCallers struct{ c *okCaller }

func (o okCallers) Get(string) (engine.Caller, error) { return o.c, nil }

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
		Source: engine.Source{Connector: "api", Request: engine.Request{Method: "GET", Path: okTemplate(t, "/list")},
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

func runOK(t *testing.T, plan *engine.Plan, c *okCaller) map[string]engine.Outcome {
	t.Helper()
	st := &okState{links: map[string]string{}}
	r := engine.NewRunner(plan, okCallers{c}, st, nil, nil)
	r.Sleep = func(context.Context, time.Duration) error { return nil }
	if _, err := r.Sync(context.Background(), "p", engine.SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	out := map[string]engine.Outcome{}
	for _, o := range st.outcomes {
		out[o.RecordKey] = o
	}
	return out
}

func TestRunner_CreateOK(t *testing.T) {
	c := &okCaller{
		list: []any{map[string]any{"id": "a", "answer": "ok"}, map[string]any{"id": "b", "answer": "Failed"}},
		handle: func(call *engine.Call) any {
			body := call.Body.(map[string]any)
			return map[string]any{"status": body["answer"], "txn": "t-" + body["id"].(string)}
		},
	}
	got := runOK(t, okPlan(t, nil), c)
	if o := got["a"]; o.Action != engine.ActionCreated || o.Link == nil || o.Link.IDB != "t-a" {
		t.Errorf("a: %+v, want created and linked to t-a", o)
	}
	if o := got["b"]; o.Action != engine.ActionFailed || o.Reason != "not_ok" || o.Class != engine.ClassPermanent || o.Link != nil {
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
			c := &okCaller{
				list: []any{map[string]any{"id": "b", "answer": tc.answer}},
				handle: func(call *engine.Call) any {
					return map[string]any{"status": call.Body.(map[string]any)["answer"], "txn": "t"}
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
	c := &okCaller{
		list: []any{map[string]any{"id": "a", "answer": "ok"}},
		handle: func(call *engine.Call) any {
			if call.Path == "/ack" {
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
	if o.Link == nil || o.Link.IDB != "t-a" {
		t.Errorf("a: link %+v, want the written target kept", o.Link)
	}
}

// A job the remote reports failed wrote nothing: no link, so the retry
// creates again; a job that only timed out keeps its link.
func TestRunner_PollFailedKeepsNoLink(t *testing.T) {
	states := map[string]string{"a": "Failed", "b": "Running", "c": "Done"}
	c := &okCaller{
		list: []any{map[string]any{"id": "a", "answer": "ok"}, map[string]any{"id": "b", "answer": "ok"}, map[string]any{"id": "c", "answer": "ok"}},
		handle: func(call *engine.Call) any {
			if call.Path == "/write" {
				body := call.Body.(map[string]any)
				return map[string]any{"status": "ok", "txn": body["id"]}
			}
			return map[string]any{"state": states[call.Path[len("/status/"):]]}
		},
	}
	status := engine.Request{Method: "GET", Path: okTemplate(t, "/status/{$transaction}")}
	after := []engine.After{{Name: "wait", Connector: "api", Request: status, Poll: &engine.Poll{
		Request: status, Status: okJQ(t, ".state"), Done: map[string]bool{"Done": true}, Failed: map[string]bool{"Failed": true},
		Interval: time.Millisecond, Timeout: 0}}}
	got := runOK(t, okPlan(t, after), c)
	if o := got["a"]; o.Action != engine.ActionFailed || o.Link != nil {
		t.Errorf("a (job failed): %+v, want failed with no link", o)
	}
	if o := got["b"]; o.Action != engine.ActionFailed || o.Link == nil || o.Link.IDB != "b" {
		t.Errorf("b (poll timed out): %+v, want failed with the link kept", o)
	}
	if o := got["c"]; o.Action != engine.ActionCreated || o.Link == nil {
		t.Errorf("c (job done): %+v, want created and linked", o)
	}
}

// A dry run writes nothing, so it runs no after-step either.
func TestRunner_DryRunSkipsAfterSteps(t *testing.T) {
	c := &okCaller{
		list:   []any{map[string]any{"id": "a", "answer": "ok"}},
		handle: func(*engine.Call) any { return map[string]any{"status": "ok", "txn": "t-a"} },
	}
	after := []engine.After{{Name: "ack", Connector: "api", Request: engine.Request{Method: "POST", Path: okTemplate(t, "/ack")}}}
	st := &okState{links: map[string]string{}}
	r := engine.NewRunner(okPlan(t, after), okCallers{c}, st, nil, nil)
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
