package spectest

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"sync"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/mapping"
)

// remote is the in-process side of a test: engine.Connectors whose source,
// target and callers render each request with the connector's own
// rendering and answer it from the test's canned answers. It keeps every
// write it was sent, grouped by the item (payload) that sent it.
type remote struct {
	plan *engine.Plan
	t    *Test

	mu sync.Mutex
	// groups are the calls of the items of the record being run, in the
	// order their first call arrived; byItem indexes them by payload.
	groups []*group
	byItem map[uintptr]*group
	// unwritten are the after-steps run for items that were not written
	// (on: skipped, failed, unchanged), one group per item in the order
	// they ran, with the outcome they ran for.
	unwritten []*unwrittenGroup
	byVars    map[*mapping.Vars]*unwrittenGroup
	// unanswered are reads no answer matched: test errors.
	unanswered []string
}

// unwrittenGroup is what the after-steps of one unwritten item sent.
type unwrittenGroup struct {
	action, reason string
	calls          []Call
	vars           *mapping.Vars // held, so its address is not reused
}

// group is what one item sent.
type group struct {
	write bool // a create, update or after-step was sent
	calls []Call
}

// Call is one request as it went out.
type Call struct {
	Step   string            `json:"step,omitempty"`
	Method string            `json:"method"`
	Path   string            `json:"path"`
	Query  map[string]string `json:"query,omitempty"`
	Body   any               `json:"body,omitempty"`
}

func newRemote(plan *engine.Plan, t *Test) *remote {
	return &remote{plan: plan, t: t, byItem: map[uintptr]*group{}, byVars: map[*mapping.Vars]*unwrittenGroup{}}
}

// reset starts a new source record.
func (r *remote) reset() {
	r.mu.Lock()
	r.groups, r.byItem, r.unanswered = nil, map[uintptr]*group{}, nil
	r.unwritten, r.byVars = nil, map[*mapping.Vars]*unwrittenGroup{}
	r.mu.Unlock()
}

// note files a call under the item whose payload sent it.
func (r *remote) note(payload any, c Call, write bool) {
	m, ok := payload.(map[string]any)
	if !ok || m == nil {
		return
	}
	id := reflect.ValueOf(m).Pointer()
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.byItem[id]
	if g == nil {
		g = &group{}
		r.byItem[id] = g
		r.groups = append(r.groups, g)
	}
	if write {
		g.write = true
		g.calls = append(g.calls, c)
	}
}

// noteUnwritten files an after-step call of an item that was not
// written; the runner gives each such item its own variables.
func (r *remote) noteUnwritten(v *mapping.Vars, c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.byVars[v]
	if g == nil {
		g = &unwrittenGroup{vars: v}
		if o, ok := v.Outcome.(map[string]any); ok {
			g.action, _ = o["action"].(string)
			g.reason, _ = o["reason"].(string)
		}
		r.byVars[v] = g
		r.unwritten = append(r.unwritten, g)
	}
	g.calls = append(g.calls, c)
}

func (r *remote) normalize(connector string) engine.NormalizeSpec {
	if c, ok := r.plan.Connectors[connector]; ok {
		return c.Spec.Normalize
	}
	return engine.NormalizeSpec{}
}

// answer finds the most specific canned answer for a request; ok is false
// when none matches.
func (r *remote) answer(pv *engine.CallPreview) (*Answer, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cands []*Answer
	for _, a := range r.t.Answers {
		if a.matches(pv.Method, pv.Path, pv.Query) {
			cands = append(cands, a)
		}
	}
	if len(cands) == 0 {
		return nil, false
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].literal > cands[j].literal })
	best := cands[:1]
	for _, a := range cands[1:] {
		if a.Pattern == best[0].Pattern {
			best = append(best, a)
		}
	}
	// Several answers to one pattern are given in turn; the last repeats.
	n := best[0].used
	best[0].used++
	if n >= len(best) {
		n = len(best) - 1
	}
	return best[n], true
}

// reply turns an answer into the body or the error a connector returns.
func reply(a *Answer, pv *engine.CallPreview) (any, error) {
	if a.Status >= 200 && a.Status < 300 {
		return a.Body, nil
	}
	// The answer's body goes with the error, as the connector sends it, for
	// the spec's classify rules.
	re := &engine.RemoteError{Status: a.Status, Method: pv.Method, Path: pv.Path, Class: engine.ClassPermanent, Body: a.Body}
	switch {
	case a.Status == http.StatusUnauthorized || a.Status == http.StatusForbidden:
		re.Class = engine.ClassAuth
	case a.Status == http.StatusTooManyRequests || a.Status >= 500:
		re.Class = engine.ClassRetryable
	}
	if a.Status == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %w", engine.ErrNotFound, re)
	}
	return nil, re
}

func (r *remote) read(pv *engine.CallPreview) (any, error) {
	a, ok := r.answer(pv)
	if !ok {
		r.mu.Lock()
		r.unanswered = append(r.unanswered, "answer "+pv.Method+" "+pv.Path)
		r.mu.Unlock()
		return nil, &engine.RemoteError{Class: engine.ClassConfig, Method: pv.Method, Path: pv.Path,
			Msg: "the test declares no answer for this request (add -- answer " + pv.Method + " " + pv.Path + " --)"}
	}
	return reply(a, pv)
}

// write answers a write: its canned answer, or an empty object.
func (r *remote) write(pv *engine.CallPreview) (any, error) {
	a, ok := r.answer(pv)
	if !ok {
		return map[string]any{}, nil
	}
	return reply(a, pv)
}

func selectRecords(ctx context.Context, recs *mapping.JQ, body any, v *mapping.Vars) ([]any, error) {
	if recs == nil {
		if body == nil {
			return nil, nil
		}
		return []any{body}, nil
	}
	out, err := recs.One(ctx, body, v)
	if err != nil {
		return nil, fmt.Errorf("records: %w", err)
	}
	switch x := out.(type) {
	case nil, string:
		return nil, nil
	case []any:
		return x, nil
	}
	return nil, fmt.Errorf("records: selected a %T, not an array", out)
}

// Source, Target and Caller make remote an engine.Connectors.

func (r *remote) Source(p *engine.Pipeline) (engine.Source, error) {
	return &source{r: r, p: p}, nil
}

func (r *remote) Target(p *engine.Pipeline) (engine.Target, error) {
	if p.Upsert.Native {
		return &batchTarget{&target{r: r, p: p}}, nil
	}
	return &target{r: r, p: p}, nil
}

func (r *remote) Caller(name string) (engine.Caller, error) {
	if _, ok := r.plan.Connectors[name]; !ok {
		return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("no connector %q", name)}
	}
	return &caller{r: r, name: name}, nil
}

// source serves the test's records.
type source struct {
	r *remote
	p *engine.Pipeline
}

func (s *source) List(ctx context.Context, v *mapping.Vars, fn func(*engine.Page) error) error {
	return fn(&engine.Page{Number: 1, Records: s.r.t.Records, Total: len(s.r.t.Records)})
}

func (s *source) Get(ctx context.Context, v *mapping.Vars) (any, error) {
	for _, rec := range s.r.t.Records {
		k, err := s.p.Source.Key.One(ctx, rec, v)
		if err == nil && engine.ScalarString(k) == engine.ScalarString(v.Key) {
			return rec, nil
		}
	}
	return nil, fmt.Errorf("%w: no source record %v in the test", engine.ErrNotFound, v.Key)
}

type target struct {
	r *remote
	p *engine.Pipeline
}

func (t *target) Find(ctx context.Context, payload map[string]any, v *mapping.Vars) (engine.Match, error) {
	u := &t.p.Upsert
	if rec, ok := t.r.t.Targets[engine.ScalarString(v.Key)]; ok {
		idV, err := u.FindID.One(ctx, rec, v)
		if err != nil || engine.ScalarString(idV) == "" {
			return engine.Match{}, fmt.Errorf("target %v: find.id yields no value from it", v.Key)
		}
		return engine.Match{Count: 1, ID: engine.ScalarString(idV), Record: rec}, nil
	}
	if u.Find == nil {
		return engine.Match{}, fmt.Errorf("the upsert declares no find request")
	}
	pv, err := rest.Render(ctx, u.Find, payload, v, t.r.normalize(u.Connector))
	if err != nil {
		return engine.Match{}, err
	}
	t.r.note(payload, Call{}, false)
	a, ok := t.r.answer(pv)
	if !ok {
		return engine.Match{}, nil // the target has nothing under this key
	}
	body, err := reply(a, pv)
	if err != nil {
		return engine.Match{}, err
	}
	recs, err := selectRecords(ctx, u.Find.Records, body, v)
	if err != nil || len(recs) != 1 {
		return engine.Match{Count: len(recs)}, err
	}
	idV, err := u.FindID.One(ctx, recs[0], v)
	if err != nil || engine.ScalarString(idV) == "" {
		return engine.Match{}, fmt.Errorf("find.id yields no value")
	}
	return engine.Match{Count: 1, ID: engine.ScalarString(idV), Record: recs[0]}, nil
}

func (t *target) Create(ctx context.Context, payload map[string]any, v *mapping.Vars) (engine.Written, error) {
	return t.send(ctx, false, payload, v)
}

func (t *target) Update(ctx context.Context, payload map[string]any, v *mapping.Vars) (engine.Written, error) {
	return t.send(ctx, true, payload, v)
}

func (t *target) send(ctx context.Context, update bool, payload map[string]any, v *mapping.Vars) (engine.Written, error) {
	w := t.p.Upsert.Write(update)
	if w.Request == nil {
		return engine.Written{}, fmt.Errorf("the upsert declares no request for this write")
	}
	pv, err := rest.Render(ctx, w.Request, payload, v, t.r.normalize(t.p.Upsert.Connector))
	if err != nil {
		return engine.Written{}, err
	}
	t.r.note(payload, Call{Method: pv.Method, Path: pv.Path, Query: pv.Query, Body: pv.Body}, true)
	body, err := t.r.write(pv)
	if err != nil {
		return engine.Written{}, err
	}
	return w.Answer(ctx, body, v, pv.Method, pv.Path, 200)
}

func (t *target) Preview(ctx context.Context, update bool, payload map[string]any, v *mapping.Vars) (*engine.CallPreview, error) {
	w := t.p.Upsert.Write(update)
	if w.Request == nil {
		return nil, fmt.Errorf("the upsert declares no request for this write")
	}
	return rest.Render(ctx, w.Request, payload, v, t.r.normalize(t.p.Upsert.Connector))
}

// caller answers enrich, after-step, poll and live-lookup requests.
type caller struct {
	r    *remote
	name string
}

func (c *caller) Call(ctx context.Context, req *engine.Request, input any, v *mapping.Vars, o engine.CallOptions) (engine.Answer, error) {
	pv, err := rest.Render(ctx, req, input, v, c.r.normalize(c.name))
	if err != nil {
		return engine.Answer{}, err
	}
	var body any
	if o.Write {
		call := Call{Step: stepName(o.Label), Method: pv.Method, Path: pv.Path, Query: pv.Query, Body: pv.Body}
		if _, written := v.Payload.(map[string]any); written {
			c.r.note(v.Payload, call, true)
		} else {
			c.r.noteUnwritten(v, call)
		}
		body, err = c.r.write(pv)
	} else {
		body, err = c.r.read(pv)
	}
	if err != nil {
		return engine.Answer{}, err
	}
	if o.Check != nil {
		if err := o.Check.Judge(ctx, body, v, pv.Method, pv.Path, 200); err != nil {
			return engine.Answer{}, err
		}
	}
	ans := engine.Answer{Body: body}
	if req.Records != nil {
		recs, err := selectRecords(ctx, req.Records, body, v)
		if err != nil {
			return engine.Answer{}, err
		}
		if recs == nil {
			recs = []any{}
		}
		ans.Records = recs
	}
	return ans, nil
}

// CallPages answers a paged request with one page: a test's canned answer
// is the whole listing.
func (c *caller) CallPages(ctx context.Context, req *engine.Request, input any, v *mapping.Vars, label string, fn func(*engine.Page) error) error {
	ans, err := c.Call(ctx, req, input, v, engine.CallOptions{Label: label})
	if err != nil {
		return err
	}
	recs := ans.Records
	if req.Records == nil {
		recs, _ = selectRecords(ctx, nil, ans.Body, v)
	}
	return fn(&engine.Page{Number: 1, Records: recs, Total: len(recs)})
}

func (c *caller) Preview(ctx context.Context, req *engine.Request, input any, v *mapping.Vars) (*engine.CallPreview, error) {
	return rest.Render(ctx, req, input, v, c.r.normalize(c.name))
}

// stepName is the after-step's name from its call label
// ("pipeline/after/submit" → "submit").
func stepName(label string) string {
	for i := len(label) - 1; i >= 0; i-- {
		if label[i] == '/' {
			return label[i+1:]
		}
	}
	return label
}

// clock is the run's clock: fixed at the test's now, moved only by the
// runner's sleeps (status polls), so a poll's timeout is reached without
// waiting.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}
