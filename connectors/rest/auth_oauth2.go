package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"casesync/engine"
)

// oauth2 is the client-credentials grant (RFC 6749 §4.4), written out
// rather than taken from golang.org/x/oauth2: the grant is one form POST,
// and doing it here sends it through this connector's rate limit,
// concurrency cap, retries, logs and redactor, and shares the session's
// single-flight login and 401 re-login with token_login. Client
// credentials travel in the form body (§2.3.1), which token endpoints of
// API gateways accept.
type oauth2 struct {
	c    *Client
	url  *url.URL
	form url.Values
}

func newOAuth2Auth(c *Client, a *engine.Auth) (authenticator, error) {
	spec := a.Spec.OAuth2
	if spec == nil {
		return nil, errors.New("oauth2: missing settings")
	}
	if !strings.HasPrefix(spec.TokenURL, "http://") && !strings.HasPrefix(spec.TokenURL, "https://") {
		return nil, fmt.Errorf("token_url %q is not an http(s) URL", spec.TokenURL)
	}
	u, err := url.Parse(spec.TokenURL)
	if err != nil {
		return nil, fmt.Errorf("token_url: %w", err)
	}
	id, err := c.resolve(spec.ClientID)
	if err != nil {
		return nil, fmt.Errorf("client_id: %w", err)
	}
	secret, err := c.resolve(spec.ClientSecret)
	if err != nil {
		return nil, fmt.Errorf("client_secret: %w", err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}
	if len(spec.Scopes) > 0 {
		form.Set("scope", strings.Join(spec.Scopes, " "))
	}
	o := &oauth2{c: c, url: u, form: form}
	return &session{c: c, login: o.login}, nil
}

func (o *oauth2) login(ctx context.Context) (http.Header, time.Duration, error) {
	req := &outbound{
		method: http.MethodPost, url: o.url, header: http.Header{}, form: o.form,
		idempotent: true, login: true, label: "oauth2 token",
	}
	resp, err := o.c.send(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	fail := func(msg string) error {
		return &engine.RemoteError{Class: engine.ClassAuth, Status: resp.Status, Method: req.method, Path: o.c.path(req), Msg: msg}
	}
	body, _ := resp.Body.(map[string]any)
	tok, _ := body["access_token"].(string)
	if tok == "" {
		return nil, 0, fail("token response has no access_token")
	}
	o.c.red.Add(tok)
	if typ, _ := body["token_type"].(string); typ != "" && !strings.EqualFold(typ, "bearer") {
		return nil, 0, fail(fmt.Sprintf("unsupported token_type %q", typ))
	}
	var ttl time.Duration
	if v, ok := body["expires_in"]; ok && v != nil {
		if ttl, ok = seconds(v); !ok {
			return nil, 0, fail("expires_in: want seconds")
		}
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+tok)
	return h, ttl, nil
}
