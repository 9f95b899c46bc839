package engine

import (
	"context"
	"fmt"
	"net/url"

	"casesync/engine/mapping"
)

// render turns a compiled request into a concrete call for input.
func (r *Request) render(ctx context.Context, input any, v *mapping.Vars) (*Call, error) {
	if r.Path == nil {
		return nil, fmt.Errorf("request has no path")
	}
	path, err := r.Path.Render(ctx, input, v)
	if err != nil {
		return nil, fmt.Errorf("path: %w", err)
	}
	c := &Call{Method: r.Method, Path: path, Header: r.Headers, Pagination: r.Pagination}
	if len(r.Query) > 0 {
		c.Query = url.Values{}
		for _, q := range r.Query {
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
		recs := r.Records
		c.Records = func(ctx context.Context, body any) ([]any, error) {
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
	return c, nil
}

// Records applies a records selector to a single response body.
func (c *Call) records(ctx context.Context, body any) ([]any, error) {
	if c.Records != nil {
		return c.Records(ctx, body)
	}
	if arr, ok := body.([]any); ok {
		return arr, nil
	}
	if body == nil {
		return nil, nil
	}
	return []any{body}, nil
}
