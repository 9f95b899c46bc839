package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"casesync/engine"
	"casesync/engine/mapping"
)

// The engine's ports (engine.Connectors) over HTTP: each renders the
// requests a spec declares and sends them through the connector's Client,
// so every pipeline shares its connector's login, rate limit and cap.

var _ engine.Connectors = (*Pool)(nil)

func (p *Pool) client(name string) (*Client, error) {
	if c, ok := p.clients[name]; ok {
		return c, nil
	}
	return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("no connector %q", name)}
}

// Source is pipeline pl's source: source.request lists, source.get re-reads.
func (p *Pool) Source(pl *engine.Pipeline) (engine.Source, error) {
	c, err := p.client(pl.Source.Connector)
	if err != nil {
		return nil, err
	}
	return &source{c: c, p: pl}, nil
}

// Target is pipeline pl's upsert target.
func (p *Pool) Target(pl *engine.Pipeline) (engine.Target, error) {
	c, err := p.client(pl.Upsert.Connector)
	if err != nil {
		return nil, err
	}
	return &target{c: c, p: pl}, nil
}

// Caller is the named connector for enrich, after-step, poll and lookup
// requests.
func (p *Pool) Caller(name string) (engine.Caller, error) {
	c, err := p.client(name)
	if err != nil {
		return nil, err
	}
	return caller{c}, nil
}

type source struct {
	c *Client
	p *engine.Pipeline
}

func (s *source) List(ctx context.Context, v *mapping.Vars, fn func(*engine.Page) error) error {
	call, err := render(ctx, &s.p.Source.Request, nil, v)
	if err != nil {
		return &RequestError{What: "source request", Pos: s.p.Source.Request.Pos, Err: err}
	}
	call.Label = s.p.Name + "/source"
	call.Idempotent = true
	return s.c.List(ctx, call, fn)
}

func (s *source) Get(ctx context.Context, v *mapping.Vars) (any, error) {
	get := s.p.Source.Get
	if get == nil {
		return nil, &RequestError{What: "source.get", Err: errors.New("the source declares no get request")}
	}
	call, err := render(ctx, get, nil, v)
	if err != nil {
		return nil, &RequestError{What: "source.get", Pos: get.Pos, Err: err}
	}
	call.Label = s.p.Name + "/get"
	call.Idempotent = true
	resp, err := s.c.Do(ctx, call)
	if err != nil {
		var re *engine.RemoteError
		if errors.As(err, &re) && re.Status == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %w", engine.ErrNotFound, err)
		}
		return nil, err
	}
	recs, err := records(ctx, call.Records, resp.Body)
	if err == nil && len(recs) != 1 {
		err = fmt.Errorf("get returned %d records, want 1", len(recs))
	}
	if err != nil {
		return nil, &engine.RemoteError{Class: engine.ClassPermanent, Status: resp.Status, Method: call.Method, Path: call.Path, Msg: err.Error()}
	}
	return recs[0], nil
}

type target struct {
	c *Client
	p *engine.Pipeline
}

func (t *target) Find(ctx context.Context, payload map[string]any, v *mapping.Vars) (engine.Match, error) {
	u := &t.p.Upsert
	if u.Find == nil {
		return engine.Match{}, &RequestError{What: "upsert.find", Err: errors.New("the upsert declares no find request")}
	}
	call, err := render(ctx, u.Find, payload, v)
	if err != nil {
		return engine.Match{}, &RequestError{What: "upsert.find", Pos: u.Find.Pos, Err: err}
	}
	call.Label = t.p.Name + "/find"
	call.Idempotent = true
	resp, err := t.c.Do(ctx, call)
	if err != nil {
		return engine.Match{}, err
	}
	recs, err := records(ctx, call.Records, resp.Body)
	if err != nil {
		return engine.Match{}, err
	}
	if len(recs) != 1 {
		return engine.Match{Count: len(recs)}, nil
	}
	idV, err := u.FindID.One(ctx, recs[0], v)
	if err != nil {
		return engine.Match{}, fmt.Errorf("find.id: %w", err)
	}
	id := engine.ScalarString(idV)
	if id == "" {
		return engine.Match{}, fmt.Errorf("find.id yields no value")
	}
	return engine.Match{Count: 1, ID: id, Record: recs[0]}, nil
}

func (t *target) Create(ctx context.Context, payload map[string]any, v *mapping.Vars) (engine.Written, error) {
	return t.send(ctx, false, payload, v)
}

func (t *target) Update(ctx context.Context, payload map[string]any, v *mapping.Vars) (engine.Written, error) {
	return t.send(ctx, true, payload, v)
}

func (t *target) call(ctx context.Context, update bool, payload map[string]any, v *mapping.Vars) (*Call, engine.UpsertWrite, error) {
	w := t.p.Upsert.Write(update)
	if w.Request == nil {
		return nil, w, &RequestError{What: "upsert", Err: errors.New("the upsert declares no request for this write")}
	}
	call, err := render(ctx, w.Request, payload, v)
	if err != nil {
		return nil, w, &RequestError{What: "upsert", Pos: w.Request.Pos, Err: err}
	}
	call.Label = t.p.Name + "/upsert"
	// An update by a method other than POST may be repeated after an
	// unknown outcome; anything else only when the spec says so.
	call.Idempotent = t.p.Upsert.Idempotent || update && call.Method != http.MethodPost
	return call, w, nil
}

func (t *target) send(ctx context.Context, update bool, payload map[string]any, v *mapping.Vars) (engine.Written, error) {
	call, w, err := t.call(ctx, update, payload, v)
	if err != nil {
		return engine.Written{}, err
	}
	resp, err := t.c.Do(ctx, call)
	if err != nil {
		return engine.Written{}, err
	}
	return w.Answer(ctx, resp.Body, v, call.Method, call.Path, resp.Status)
}

func (t *target) Preview(ctx context.Context, update bool, payload map[string]any, v *mapping.Vars) (*engine.CallPreview, error) {
	call, _, err := t.call(ctx, update, payload, v)
	if err != nil {
		return nil, err
	}
	return preview(call, t.c.normal), nil
}

type caller struct{ c *Client }

func (c caller) Call(ctx context.Context, req *engine.Request, input any, v *mapping.Vars, o engine.CallOptions) (engine.Answer, error) {
	call, err := render(ctx, req, input, v)
	if err != nil {
		return engine.Answer{}, &RequestError{What: "request", Pos: req.Pos, Err: err}
	}
	call.Label = o.Label
	// A write by POST is not repeated after an unknown outcome.
	call.Idempotent = !o.Write || call.Method != http.MethodPost
	resp, err := c.c.Do(ctx, call)
	if err != nil {
		return engine.Answer{}, err
	}
	if o.Check != nil {
		if err := o.Check.Judge(ctx, resp.Body, v, call.Method, call.Path, resp.Status); err != nil {
			return engine.Answer{}, err
		}
	}
	ans := engine.Answer{Body: resp.Body}
	if call.Records != nil {
		recs, err := call.Records(ctx, resp.Body)
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

func (c caller) CallPages(ctx context.Context, req *engine.Request, input any, v *mapping.Vars, label string, fn func(*engine.Page) error) error {
	call, err := render(ctx, req, input, v)
	if err != nil {
		return &RequestError{What: "request", Pos: req.Pos, Err: err}
	}
	call.Label = label
	call.Idempotent = true
	return c.c.List(ctx, call, fn)
}

func (c caller) Preview(ctx context.Context, req *engine.Request, input any, v *mapping.Vars) (*engine.CallPreview, error) {
	call, err := render(ctx, req, input, v)
	if err != nil {
		return nil, &RequestError{What: "request", Pos: req.Pos, Err: err}
	}
	return preview(call, c.c.normal), nil
}

// RequestError is a declared request that cannot be rendered for a record
// (a template fails on it): the record's data, not the remote side.
type RequestError struct {
	What string
	Pos  string
	Err  error
}

func (e *RequestError) Error() string {
	if e.Pos != "" {
		return fmt.Sprintf("%s (%s): %v", e.What, e.Pos, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.What, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

// ReasonCode is the reason a record failed with: its request.
func (e *RequestError) ReasonCode() string { return "request" }

// FailureClass: a request that cannot be built for this record.
func (e *RequestError) FailureClass() engine.Class { return engine.ClassData }
