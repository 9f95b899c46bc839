package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"casesync/engine"
	"casesync/engine/mapping"
)

// tokenLogin exchanges credentials for a token (read from the response
// body with a jq program) and/or headers that are sent back on every call.
type tokenLogin struct {
	c         *Client
	method    string
	url       *url.URL
	body      any        // JSON body, secrets resolved
	form      url.Values // form body, secrets resolved
	token     *mapping.JQ
	expiresIn *mapping.JQ
	ttl       time.Duration
	header    string
	prefix    string
	query     string // query parameter carrying the token, "" for none
	sendBack  []string
}

func newTokenLoginAuth(c *Client, a *engine.Auth) (authenticator, error) {
	spec := a.Spec.TokenLogin
	if spec == nil {
		return nil, errors.New("token_login: missing settings")
	}
	t := &tokenLogin{
		c:         c,
		method:    strings.ToUpper(spec.Method),
		token:     a.Token,
		expiresIn: a.ExpiresIn,
		ttl:       a.TTL,
		header:    spec.TokenHeader,
		prefix:    spec.TokenPrefix,
		query:     spec.TokenQuery,
		sendBack:  spec.SendBackHeaders,
	}
	if t.method == "" {
		t.method = http.MethodPost
	}
	if t.header == "" && t.query == "" {
		t.header = "Authorization"
	}
	var err error
	if t.token, err = compiled(t.token, spec.Token); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	if t.expiresIn, err = compiled(t.expiresIn, spec.ExpiresIn); err != nil {
		return nil, fmt.Errorf("expires_in: %w", err)
	}
	if t.ttl == 0 && spec.TTL != "" {
		if t.ttl, err = time.ParseDuration(spec.TTL); err != nil {
			return nil, fmt.Errorf("ttl: %w", err)
		}
	}
	if t.token == nil && len(t.sendBack) == 0 {
		return nil, errors.New("token_login needs token or send_back_headers: nothing would authenticate later calls")
	}
	path := spec.URL
	if path == "" {
		path = spec.Path
	}
	if t.url, err = c.resolveURL(path); err != nil {
		return nil, err
	}
	if spec.Body != nil && spec.Form != nil {
		return nil, errors.New("token_login has both body and form")
	}
	if spec.Body != nil {
		if t.method == http.MethodGet {
			return nil, errors.New("token_login: a GET login cannot send a JSON body; use form")
		}
		if t.body, err = resolveTree(c, spec.Body); err != nil {
			return nil, fmt.Errorf("body: %w", err)
		}
	}
	if spec.Form != nil {
		t.form = url.Values{}
		for k, v := range spec.Form {
			s, err := c.resolve(v)
			if err != nil {
				return nil, fmt.Errorf("form %s: %w", k, err)
			}
			t.form.Set(k, s)
		}
	}
	return &session{c: c, login: t.login, sendBack: t.sendBack}, nil
}

func (t *tokenLogin) login(ctx context.Context) (http.Header, time.Duration, error) {
	o := &outbound{
		method: t.method, url: t.url, header: http.Header{},
		body: t.body, form: t.form,
		idempotent: true, login: true, label: "login",
	}
	resp, err := t.c.send(ctx, o)
	if err != nil {
		return nil, 0, err
	}
	fail := func(format string, args ...any) error {
		return &engine.RemoteError{Class: engine.ClassAuth, Status: resp.Status, Method: o.method, Path: t.c.path(o), Msg: fmt.Sprintf(format, args...)}
	}
	h := http.Header{}
	if t.token != nil {
		v, err := t.token.One(ctx, resp.Body, nil)
		if err != nil {
			return nil, 0, fail("token: %v", err)
		}
		tok, ok := v.(string)
		if !ok || tok == "" {
			return nil, 0, fail("login response has no token")
		}
		t.c.red.Add(tok)
		if t.header != "" {
			h.Set(t.header, t.prefix+tok)
		}
		if t.query != "" {
			// Carried with the credentials and moved into the URL when the
			// request is sent, so no logged or previewed path holds it.
			h[queryCredential+t.query] = []string{tok}
		}
	}
	for _, name := range t.sendBack {
		v := resp.Header.Get(name)
		if v == "" {
			return nil, 0, fail("login response lacks header %s", name)
		}
		h.Set(name, v)
	}
	ttl := t.ttl
	if t.expiresIn != nil {
		v, err := t.expiresIn.One(ctx, resp.Body, nil)
		if err != nil {
			return nil, 0, fail("expires_in: %v", err)
		}
		if v != nil {
			secs, ok := seconds(v)
			if !ok {
				return nil, 0, fail("expires_in: want seconds, got %T", v)
			}
			ttl = secs
		}
	}
	return h, ttl, nil
}

// seconds reads a lifetime in seconds from a number or a numeric string.
func seconds(v any) (time.Duration, bool) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int:
		f = float64(x)
	case string:
		p, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, false
		}
		f = p
	default:
		return 0, false
	}
	if f <= 0 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// resolveTree copies a login body, replacing {"secret": NAME} leaves (and
// engine.Text values) with the secret's value.
func resolveTree(c *Client, v any) (any, error) {
	switch x := v.(type) {
	case engine.Text:
		return c.resolve(x)
	case *engine.Text:
		return c.resolve(*x)
	case map[string]any:
		if name, ok := x["secret"].(string); ok && len(x) == 1 {
			return c.resolve(engine.Text{Secret: name})
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := resolveTree(c, e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := resolveTree(c, e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// compiled returns the plan's compiled program, or compiles src when a
// hand-built plan carries only the text (engine/spec always compiles).
func compiled(j *mapping.JQ, src string) (*mapping.JQ, error) {
	if j != nil || src == "" {
		return j, nil
	}
	return mapping.CompileJQ(src, nil)
}
