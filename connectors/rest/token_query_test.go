package rest_test

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/internal/fakes/his"
)

// A LoopBack API (the fake HIS) reads the login token from the
// access_token query parameter. token_query puts it there, with or
// without the header, and no logged path or error carries it.
func TestTokenLogin_TokenInQuery(t *testing.T) {
	tests := []struct {
		name   string
		header string // token_header; "" sends the token in the query only
	}{
		{"query only", ""},
		{"query and header", "Authorization"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := his.New(his.Options{})
			srv := httptest.NewServer(fake)
			defer srv.Close()
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c, _ := newClient(t, connector(srv.URL, func(c *engine.Connector) {
				c.Auth.Spec = engine.AuthSpec{TokenLogin: &engine.TokenLoginAuth{
					Path: "/Users/login", Method: "POST",
					Body:  map[string]any{"email": his.DefaultEmail, "password": map[string]any{"secret": "PASSWORD"}},
					Token: ".id", TokenHeader: tc.header, TokenQuery: "access_token",
				}}
			}), secretMap{"PASSWORD": his.DefaultPassword}, func(o *rest.Options) { o.Logger = log })
			filter := func(cid string) url.Values {
				return url.Values{"filter": {`{"where":{"cid":"` + cid + `"}}`}}
			}
			resp, err := c.Do(t.Context(), &rest.Call{Method: "GET", Path: "/people/findOne", Query: filter(his.CIDFound)})
			if err != nil {
				t.Fatalf("findOne: %v", err)
			}
			if resp.Body.(map[string]any)["cid"] != his.CIDFound {
				t.Fatalf("body %v", resp.Body)
			}
			_, err = c.Do(t.Context(), &rest.Call{Method: "GET", Path: "/people/findOne", Query: filter(his.NotFoundCID)})
			if re := remoteErr(t, err); re.Status != 404 {
				t.Fatalf("not found: %v", err)
			}
			out := logs.String() + err.Error()
			if strings.Contains(out, "access_token=") && !strings.Contains(out, "access_token=%2A") && !strings.Contains(out, "access_token=*") {
				t.Fatalf("a token reached the logs or the error:\n%s", out)
			}
			for _, w := range strings.Fields(out) {
				if len(w) >= 64 && strings.Trim(w, "0123456789abcdef") == "" {
					t.Fatalf("a token reached the logs or the error: %s", w)
				}
			}
			if fake.Counters().Writes()["login"] != 1 {
				t.Fatalf("logins %v", fake.Counters().Writes())
			}
		})
	}
}
