package rest

import (
	"context"
	"fmt"
	"net/url"

	"casesync/engine"
	"casesync/engine/mapping"
)

// render turns a declared request into a concrete call for input.
func render(ctx context.Context, r *engine.Request, input any, v *mapping.Vars) (*Call, error) {
	if r.Path == nil {
		return nil, fmt.Errorf("request has no path")
	}
	path, err := r.Path.RenderEscaped(ctx, input, v, pathSegment)
	if err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	c := &Call{Method: r.Method, Path: path, Header: r.Headers, Pagination: r.Pagination, PathTemplate: r.Path.String()}
	if len(r.Query) > 0 {
		c.Query = url.Values{}
		c.QueryTemplate = map[string]string{}
		for _, q := range r.Query {
			if q.Secret != "" {
				c.QueryTemplate[q.Name] = "{secret: " + q.Secret + "}"
				if c.SecretQuery == nil {
					c.SecretQuery = map[string]string{}
				}
				c.SecretQuery[q.Name] = q.Secret
				continue
			}
			c.QueryTemplate[q.Name] = q.Value.String()
			val, err := q.Value.Render(ctx, input, v)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", q.Name, err)
			}
			c.Query.Set(q.Name, val)
		}
	}
	if r.Body != nil {
		m := &mapping.Mapping{Fields: []mapping.Field{{Name: "body", Value: r.Body}}}
		out, err := m.Apply(ctx, input, v)
		if err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
		c.Body = out["body"]
	}
	if r.Records != nil {
		c.Records = selectRecords(r.Records, v)
	}
	return c, nil
}

// pathSegment escapes a value for one path segment: '/', '?', '#' and '%'
// are escaped, and a value that is "." or ".." (which URL resolution would
// walk up with) is escaped whole.
func pathSegment(s string) string {
	switch s {
	case ".":
		return "%2E"
	case "..":
		return "%2E%2E"
	}
	return url.PathEscape(s)
}

// selectRecords is a request's records program as a RecordsFunc.
func selectRecords(recs *mapping.JQ, v *mapping.Vars) RecordsFunc {
	return func(ctx context.Context, body any) ([]any, error) {
		out, err := recs.One(ctx, body, v)
		if err != nil {
			return nil, fmt.Errorf("records: %w", err)
		}
		switch x := out.(type) {
		case nil:
			return nil, nil
		case []any:
			return x, nil
		case string:
			// Some APIs answer "No Data Available" instead of [].
			return nil, nil
		}
		return nil, fmt.Errorf("records: selected a %T, not an array", out)
	}
}

// preview is a call as it goes on the wire, minus auth.
// The body is normalized as the connector will send it, so dry-run shows
// byte for byte what leaves (secrets aside, shown by name).
func preview(c *Call, n engine.NormalizeSpec) *engine.CallPreview {
	p := &engine.CallPreview{Method: c.Method, Path: c.Path, Body: normalize(c.Body, n)}
	if len(c.Query)+len(c.SecretQuery) > 0 {
		p.Query = map[string]string{}
		for k := range c.Query {
			p.Query[k] = c.Query.Get(k)
		}
		for k, name := range c.SecretQuery {
			p.Query[k] = "{secret: " + name + "}"
		}
	}
	return p
}

// Render renders a declared request for input exactly as the connector puts
// it on the wire — path, query and the body after the connector's normalize
// rules — minus credentials (a secret query value shows as its name). The
// in-process ports of engine test answer it and compare it, so a spec test
// sees the very body a run would send.
func Render(ctx context.Context, r *engine.Request, input any, v *mapping.Vars, n engine.NormalizeSpec) (*engine.CallPreview, error) {
	c, err := render(ctx, r, input, v)
	if err != nil {
		return nil, &RequestError{What: "request", Pos: r.Pos, Err: err}
	}
	return preview(c, n), nil
}
