package rest_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"casesync/connectors/rest"
	"casesync/engine"
)

const (
	canaryKey   = "canary-KEY-7f3a9c"     // an API key from the secrets
	canaryPass  = "canary-PASS-41b2e8"    // a login password from the secrets
	canaryToken = "canary-TOKEN-d00dfeed" // a token the server issues
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Secrets pushed through every output path never come out: debug log
// lines, error strings of 401/422/500 bodies that echo them, URLs with them
// in the query (a next link, a call's query, a transport error's URL), and
// a token obtained by logging in.
func TestRedaction_CanaryNeverLeaks(t *testing.T) {
	echo := func(w http.ResponseWriter, status int, r *http.Request) {
		writeJSON(w, status, map[string]any{"errors": []any{map[string]any{
			"message": "bad credentials " + canaryKey + " " + canaryPass + " " + canaryToken,
			"detail":  []any{"/key=" + canaryKey, r.Header.Get("X-Api-Key"), r.Header.Get("Authorization")},
		}}})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"token": canaryToken})
	})
	mux.HandleFunc("/401", func(w http.ResponseWriter, r *http.Request) { echo(w, 401, r) })
	mux.HandleFunc("/422", func(w http.ResponseWriter, r *http.Request) { echo(w, 422, r) })
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) { echo(w, 500, r) })
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(400)
		fmt.Fprintf(w, "your key %s is wrong\n", canaryKey)
	})
	mux.HandleFunc("/list", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("page") == "2" {
			writeJSON(w, 200, map[string]any{"data": []any{}, "next": nil})
			return
		}
		writeJSON(w, 200, map[string]any{"data": []any{map[string]any{"id": 1}},
			"next": "/list?page=2&access_token=" + url.QueryEscape(canaryToken) + "&debug=" + canaryKey})
	})
	srv := serve(t, mux.ServeHTTP)

	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	secrets := secretMap{"KEY": canaryKey, "PASS": canaryPass}
	withLog := func(o *rest.Options) { o.Logger = logger }

	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	// Through a Pool, as the runner builds them: one redactor for the
	// deployment, so each connector also masks the others' secrets.
	plan := &engine.Plan{Secrets: []string{"KEY", "PASS"}, Connectors: map[string]*engine.Connector{
		"keyed": connector(srv.URL, func(c *engine.Connector) {
			c.Auth.Spec = engine.AuthSpec{Header: &engine.HeaderAuth{Name: "X-Api-Key", Value: engine.Text{Secret: "KEY"}}}
		}),
		"login": connector(srv.URL, func(c *engine.Connector) {
			c.Auth.Spec = engine.AuthSpec{TokenLogin: &engine.TokenLoginAuth{Path: "/login", Method: "POST",
				Body:  map[string]any{"password": map[string]any{"secret": "PASS"}},
				Token: ".token", TokenHeader: "Authorization", TokenPrefix: "Bearer "}}
		}),
		"down": connector(dead.URL),
	}}
	opts := rest.Options{Sleep: (&sleeps{}).Sleep}
	withLog(&opts)
	pool, err := rest.NewPool(plan, secrets, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	keyed, login, down := pool.Client("keyed"), pool.Client("login"), pool.Client("down")

	var outputs []string
	record := func(err error) {
		if err == nil {
			t.Error("want an error")
			return
		}
		outputs = append(outputs, err.Error(), fmt.Sprintf("%+v", err))
	}
	ctx := context.Background()
	// login first: a token can be masked only once it has been issued.
	for _, c := range []*rest.Client{login, keyed} {
		for _, path := range []string{"/401", "/422", "/500", "/text"} {
			_, err := c.Do(ctx, &rest.Call{Method: "POST", Path: path, Body: map[string]any{"k": canaryKey},
				Query: url.Values{"api_key": {canaryKey}, "q": {canaryPass}}})
			record(err)
		}
		err := c.List(ctx, &rest.Call{Path: "/list", Records: dataRecords,
			Pagination: &engine.Pagination{Kind: "next_link", Spec: engine.PaginationSpec{NextLink: &engine.NextLinkPagination{JQ: ".next"}}}},
			func(*engine.Page) error { return nil })
		if err != nil {
			t.Fatalf("List: %v", err)
		}
	}
	_, err = down.Do(ctx, &rest.Call{Path: "/x", Query: url.Values{"token": {canaryKey}, "other": {canaryPass}}})
	record(err)

	outputs = append(outputs, logs.String())
	if !strings.Contains(logs.String(), `"level":"DEBUG"`) {
		t.Fatal("no debug lines were logged; the test would prove nothing")
	}
	for _, out := range outputs {
		for _, c := range []string{canaryKey, canaryPass, canaryToken} {
			for _, spelling := range []string{c, url.QueryEscape(c), c[len(c)-8:]} {
				if strings.Contains(out, spelling) {
					t.Errorf("%q leaked in:\n%s", spelling, out)
				}
			}
		}
	}
}

// A short secret (3 characters) sent in a query parameter with an unusual
// name, declared as {secret: NAME} in the spec: the server receives it,
// and no log line or error shows it.
func TestRedaction_SecretInQuery(t *testing.T) {
	const short = "q9Z"
	var got string
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Query().Get("hisToken")
		writeJSON(w, 422, map[string]any{"error": "token " + r.URL.Query().Get("hisToken") + " refused"})
	})
	plan := &engine.Plan{Secrets: []string{"API_TOKEN"}, Connectors: map[string]*engine.Connector{"api": connector(srv.URL)}}
	var logs syncBuffer
	opts := rest.Options{Sleep: (&sleeps{}).Sleep, Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	pool, err := rest.NewPool(plan, secretMap{"API_TOKEN": short}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	_, err = pool.Client("api").Do(context.Background(), &rest.Call{Path: "/items", SecretQuery: map[string]string{"hisToken": "API_TOKEN"}})
	if err == nil {
		t.Fatal("want the 422")
	}
	if got != short {
		t.Fatalf("the server received hisToken=%q, want the secret", got)
	}
	if !strings.Contains(logs.String(), "hisToken") {
		t.Fatal("no log line names the request; the test would prove nothing")
	}
	for _, out := range []string{err.Error(), fmt.Sprintf("%+v", err), logs.String()} {
		if strings.Contains(out, short) {
			t.Errorf("the secret leaked in:\n%s", out)
		}
	}
}

// A remote's error that quotes the record (a name, a date of birth, an
// e-mail) keeps only what it says about the request: the failure stored,
// logged and shown carries no personal data (issue 16 item 7).
func TestRemoteErrorTextIsScrubbed(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 422, map[string]any{"errors": []any{map[string]any{
			"status": 422, "resource": "/api/v2/cases",
			"message": `Client "Sokha Chan" born 2014-02-01 (sokha@example.org) already exists`,
		}}})
	})
	var logs syncBuffer
	c, _ := newClient(t, connector(srv.URL), secretMap{}, func(o *rest.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	_, err := c.Do(context.Background(), &rest.Call{Method: "POST", Path: "/api/v2/cases", Body: map[string]any{"name": "x"}})
	if err == nil {
		t.Fatal("want the 422")
	}
	if !strings.Contains(err.Error(), "status 422") || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("error %q lost what the remote said about the request", err)
	}
	for _, out := range []string{err.Error(), fmt.Sprintf("%+v", err), logs.String()} {
		for _, pii := range []string{"Sokha", "Chan", "2014", "sokha@"} {
			if strings.Contains(out, pii) {
				t.Errorf("%q is in %q", pii, out)
			}
		}
	}
}
