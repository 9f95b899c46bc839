package rest

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"casesync/engine"
	"casesync/engine/mapping"
	"casesync/internal/redact"
)

// outbound is a request ready to send: URL absolute with its query, call
// headers resolved, body still a JSON-shaped value (paginators edit it).
type outbound struct {
	method     string
	url        *url.URL
	header     http.Header
	body       any        // JSON body; nil sends none
	form       url.Values // form body (logins); used when body is nil
	idempotent bool
	login      bool // sent without auth; never triggers a re-login
	label      string
	// pathTemplate and queryTemplate are what logs and errors show
	// (Call.PathTemplate); a next-page URL from the server drops them.
	pathTemplate  string
	queryTemplate map[string]string
}

func (o *outbound) clone() *outbound {
	c := *o
	u := *o.url
	c.url = &u
	return &c
}

// path is the request's path and query for logs and errors: known
// secrets and the values of secret-looking query parameters masked.
func (c *Client) path(o *outbound) string {
	if o.pathTemplate != "" {
		return c.red.String(o.templatePath())
	}
	return c.red.String(redact.SafeURL(&url.URL{Path: o.url.Path, RawPath: o.url.RawPath, RawQuery: o.url.RawQuery}))
}

// templatePath is the request as the spec wrote it: the path template, and
// each query parameter's template; a parameter the spec did not write (a
// page number added by pagination) keeps its value, secret-looking names
// masked.
func (o *outbound) templatePath() string {
	q := o.url.Query()
	if len(q) == 0 {
		return o.pathTemplate
	}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(o.pathTemplate)
	for i, k := range names {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		switch t, ok := o.queryTemplate[k]; {
		case ok:
			b.WriteString(t)
		case redact.IsSecretName(k):
			b.WriteString("***")
		default:
			b.WriteString(q.Get(k))
		}
	}
	return b.String()
}

// outbound turns a Call into a request: URL joined and queried, headers
// resolved (a missing secret fails here, naming it).
func (c *Client) outbound(call *Call) (*outbound, error) {
	if call == nil {
		return nil, fmt.Errorf("connector %s: nil call", c.name)
	}
	u, err := c.resolveURL(call.Path)
	if err != nil {
		return nil, err
	}
	if len(call.Query)+len(call.SecretQuery) > 0 {
		q := u.Query()
		for k, vs := range call.Query {
			q[k] = append([]string(nil), vs...)
		}
		for k, name := range call.SecretQuery {
			v, err := engine.Text{Secret: name}.Resolve(c.secrets)
			if err != nil {
				return nil, fmt.Errorf("connector %s: query %s: %w", c.name, k, err)
			}
			c.red.Add(v)
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	hdr, err := c.resolveHeaders(call.Header)
	if err != nil {
		return nil, fmt.Errorf("connector %s: %w", c.name, err)
	}
	method := strings.ToUpper(call.Method)
	if method == "" {
		method = http.MethodGet
	}
	return &outbound{
		method:        method,
		url:           u,
		header:        hdr,
		body:          call.Body,
		idempotent:    call.Idempotent || !isWrite(method),
		label:         call.Label,
		pathTemplate:  call.PathTemplate,
		queryTemplate: call.QueryTemplate,
	}, nil
}

// isWrite reports methods that may apply twice when repeated.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPatch, http.MethodPut:
		return true
	}
	return false
}

// resolveURL joins path to the base URL; an absolute http(s) URL stands alone.
func (c *Client) resolveURL(path string) (*url.URL, error) {
	raw := path
	if !strings.HasPrefix(path, "http://") && !strings.HasPrefix(path, "https://") {
		raw = strings.TrimRight(c.conn.Spec.BaseURL, "/")
		if path != "" {
			raw += "/" + strings.TrimLeft(path, "/")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes its input, which may hold a secret query value.
		return nil, fmt.Errorf("connector %s: bad request URL %s", c.name, c.red.String(redact.SafeURL(&url.URL{Path: path})))
	}
	return u, nil
}

// encode renders the body once for every attempt.
func (c *Client) encode(o *outbound) ([]byte, string, error) {
	switch {
	case o.body != nil:
		body, err := c.resolveSecrets(normalize(o.body, c.normal))
		if err != nil {
			return nil, "", err
		}
		b, err := engine.MarshalJSON(body)
		if err != nil {
			return nil, "", fmt.Errorf("encode body: %w", err)
		}
		return b, "application/json", nil
	case o.form != nil && o.method != http.MethodGet:
		return []byte(o.form.Encode()), "application/x-www-form-urlencoded", nil
	}
	return nil, "", nil
}

// normalize applies the connector's body rules, copying what it changes so
// the caller's value is never modified. null_as_empty_string turns every
// null member of an object into ""; drop_nulls removes null members; with
// both set, nulls become "" (an explicit value wins over a missing key).
// Both recurse through objects and arrays; null array elements stay.
func normalize(v any, n engine.NormalizeSpec) any {
	if !n.NullAsEmptyString && !n.DropNulls || !hasNullMember(v) {
		// Nothing to change: the body is encoded from the payload itself,
		// not from a copy of it.
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if e == nil {
				if n.NullAsEmptyString {
					out[k] = ""
				}
				continue
			}
			out[k] = normalize(e, n)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e, n)
		}
		return out
	}
	return v
}

// hasNullMember reports whether an object in v has a null member, the
// only thing normalize changes.
func hasNullMember(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			if e == nil || hasNullMember(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasNullMember(e) {
				return true
			}
		}
	}
	return false
}

// resolveSecrets returns v with every mapping.SecretRef replaced by the
// secret's value, copying what it changes: the value exists only in the
// bytes sent, never in the payload the engine hashes, previews or logs.
func (c *Client) resolveSecrets(v any) (any, error) {
	switch x := v.(type) {
	case mapping.SecretRef:
		return c.resolve(engine.Text{Secret: x.Name})
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			r, err := c.resolveSecrets(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if out == nil && !sameValue(r, e) {
				out = make(map[string]any, len(x))
				maps.Copy(out, x)
			}
			if out != nil {
				out[k] = r
			}
		}
		if out != nil {
			return out, nil
		}
		return x, nil
	case []any:
		var out []any
		for i, e := range x {
			r, err := c.resolveSecrets(e)
			if err != nil {
				return nil, err
			}
			if out == nil && !sameValue(r, e) {
				out = append([]any(nil), x...)
			}
			if out != nil {
				out[i] = r
			}
		}
		if out != nil {
			return out, nil
		}
		return x, nil
	}
	return v, nil
}

// sameValue reports whether resolveSecrets left e as it was: only a
// SecretRef (or a container holding one) changes.
func sameValue(r, e any) bool {
	if _, ok := e.(mapping.SecretRef); ok {
		return false
	}
	switch ev := e.(type) {
	case map[string]any:
		rv, ok := r.(map[string]any)
		return ok && len(rv) == len(ev) && fmt.Sprintf("%p", rv) == fmt.Sprintf("%p", ev)
	case []any:
		rv, ok := r.([]any)
		return ok && len(rv) == len(ev) && (len(ev) == 0 || &rv[0] == &ev[0])
	}
	return true
}

// mergeBody returns a copy of body (an object, or nil) with fields set on
// top; body_cursor pagination carries its continuation this way.
func mergeBody(body any, fields map[string]any) (any, error) {
	out := map[string]any{}
	switch b := body.(type) {
	case nil:
	case map[string]any:
		maps.Copy(out, b)
	default:
		return nil, fmt.Errorf("body_cursor needs an object body, got %T", body)
	}
	maps.Copy(out, fields)
	return out, nil
}
