package rest_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/connectors/rest"
	"casesync/engine"
)

var testSecrets = secretMap{"USER": "svc-user", "PASSWORD": "pa55-word", "API_KEY": "key-12345", "CLIENT_SECRET": "cs-67890"}

// Each auth kind against a small server that checks what arrives; the
// login endpoints mimic the shapes of the systems we reach (a JSON login
// returning a token in the body, a form login returning access_token and
// expires_in, a login returning headers to send back, an OAuth2 token
// endpoint).
func TestAuth_Kinds(t *testing.T) {
	tests := []struct {
		name string
		auth engine.AuthSpec
		// login answers the login endpoint after checking the request.
		login func(t *testing.T, w http.ResponseWriter, r *http.Request)
		// want are the headers every API call must carry.
		want map[string]string
	}{
		{
			name: "none",
			auth: engine.AuthSpec{None: &struct{}{}},
			want: map[string]string{"Authorization": ""},
		},
		{
			name: "basic",
			auth: engine.AuthSpec{Basic: &engine.BasicAuth{Username: engine.Text{Value: "svc-user"}, Password: engine.Text{Secret: "PASSWORD"}}},
			want: map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("svc-user:pa55-word"))},
		},
		{
			name: "header api key",
			auth: engine.AuthSpec{Header: &engine.HeaderAuth{Name: "Ocp-Apim-Subscription-Key", Value: engine.Text{Secret: "API_KEY"}}},
			want: map[string]string{"Ocp-Apim-Subscription-Key": "key-12345", "Authorization": ""},
		},
		{
			name: "header bearer",
			auth: engine.AuthSpec{Header: &engine.HeaderAuth{Prefix: "Bearer ", Value: engine.Text{Secret: "API_KEY"}}},
			want: map[string]string{"Authorization": "Bearer key-12345"},
		},
		{
			name: "token_login json body, token from body",
			auth: engine.AuthSpec{TokenLogin: &engine.TokenLoginAuth{
				Path: "/api/v2/tokens", Method: "POST",
				Body:  map[string]any{"user": map[string]any{"user_name": "svc-user", "password": map[string]any{"secret": "PASSWORD"}}},
				Token: ".token", TokenHeader: "Authorization", TokenPrefix: "Bearer ",
			}},
			login: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				var body struct {
					User struct{ UserName, Password string } `json:"user"`
				}
				json.NewDecoder(r.Body).Decode(&body)
				if r.Header.Get("Content-Type") != "application/json" || body.User.Password != "pa55-word" {
					writeJSON(w, 401, map[string]any{"error": "Invalid User name or password."})
					return
				}
				w.Header().Set("Authorization", "Bearer jwt-1")
				writeJSON(w, 200, map[string]any{"id": 12, "token": "jwt-1"})
			},
			want: map[string]string{"Authorization": "Bearer jwt-1"},
		},
		{
			name: "token_login form, expires_in",
			auth: engine.AuthSpec{TokenLogin: &engine.TokenLoginAuth{
				Path: "/oauth2/v2.0/token", Method: "POST",
				Form:  map[string]engine.Text{"username": {Value: "svc-user"}, "password": {Secret: "PASSWORD"}, "grant_type": {Value: "password"}},
				Token: ".access_token", ExpiresIn: ".expires_in", TokenHeader: "Authorization", TokenPrefix: "Bearer ",
			}},
			login: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				if r.PostForm.Get("password") != "pa55-word" || r.PostForm.Get("grant_type") != "password" {
					writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
					return
				}
				writeJSON(w, 200, map[string]any{"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600})
			},
			want: map[string]string{"Authorization": "Bearer at-1"},
		},
		{
			name: "token_login send_back_headers",
			auth: engine.AuthSpec{TokenLogin: &engine.TokenLoginAuth{
				Path: "/api/v1/admin_auth/sign_in", Method: "POST",
				Body:            map[string]any{"email": "svc@example.org", "password": map[string]any{"secret": "PASSWORD"}},
				SendBackHeaders: []string{"access-token", "client", "uid"},
			}},
			login: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("access-token", "hdr-token-1")
				w.Header().Set("client", "client-1")
				w.Header().Set("uid", "svc@example.org")
				writeJSON(w, 200, map[string]any{"data": map[string]any{"id": 7}})
			},
			want: map[string]string{"Access-Token": "hdr-token-1", "Client": "client-1", "Uid": "svc@example.org", "Authorization": ""},
		},
		{
			name: "oauth2 client credentials",
			auth: engine.AuthSpec{OAuth2: &engine.OAuth2Auth{
				TokenURL: "/token", ClientID: engine.Text{Value: "cid"}, ClientSecret: engine.Text{Secret: "CLIENT_SECRET"}, Scopes: []string{"a.read", "b.write"},
			}},
			login: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				got := map[string]string{"grant_type": r.PostForm.Get("grant_type"), "client_id": r.PostForm.Get("client_id"),
					"client_secret": r.PostForm.Get("client_secret"), "scope": r.PostForm.Get("scope")}
				want := map[string]string{"grant_type": "client_credentials", "client_id": "cid", "client_secret": "cs-67890", "scope": "a.read b.write"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("token form (-want +got):\n%s", diff)
				}
				writeJSON(w, 200, map[string]any{"access_token": "oa-1", "token_type": "bearer", "expires_in": 3599})
			},
			want: map[string]string{"Authorization": "Bearer oa-1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logins atomic.Int32
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/items" {
					logins.Add(1)
					tc.login(t, w, r)
					return
				}
				for k, v := range tc.want {
					if got := r.Header.Get(k); got != v {
						t.Errorf("header %s = %q, want %q", k, got, v)
					}
				}
				writeJSON(w, 200, []any{map[string]any{"id": 1}})
			})
			auth := tc.auth
			if auth.OAuth2 != nil {
				o := *auth.OAuth2
				o.TokenURL = srv.URL + o.TokenURL
				auth.OAuth2 = &o
			}
			c, _ := newClient(t, connector(srv.URL, func(c *engine.Connector) { c.Auth.Spec = auth }), testSecrets)
			for range 3 {
				resp, err := c.Do(t.Context(), &rest.Call{Method: "GET", Path: "/api/items"})
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if resp.Status != 200 {
					t.Fatalf("status %d", resp.Status)
				}
			}
			if tc.login != nil && logins.Load() != 1 {
				t.Errorf("logins = %d, want 1 (the token is reused)", logins.Load())
			}
		})
	}
}

func TestAuth_MissingSecretFailsAtNew(t *testing.T) {
	c := connector("http://127.0.0.1:1", func(c *engine.Connector) {
		c.Auth.Spec = engine.AuthSpec{Header: &engine.HeaderAuth{Value: engine.Text{Secret: "NOT_SET"}}}
	})
	_, err := rest.New(c, secretMap{}, rest.Options{})
	if err == nil || engine.ClassOf(err) != engine.ClassConfig {
		t.Fatalf("err = %v (class %s), want a config error naming the secret", err, engine.ClassOf(err))
	}
}

// tokenServer issues "tok-N" tokens and accepts only tokens in valid.
type tokenServer struct {
	mu       sync.Mutex
	logins   int
	valid    map[string]bool
	api      int
	rotate   bool          // send a new access-token on every API response
	delay    time.Duration // login latency, so concurrent callers overlap
	refuse   bool          // every login fails with 401
	headerTk bool          // tokens travel in access-token headers
}

func (s *tokenServer) handler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/login" {
		time.Sleep(s.delay)
		s.mu.Lock()
		s.logins++
		tok := fmt.Sprintf("tok-%d", s.logins)
		if !s.refuse {
			s.valid[tok] = true
		}
		s.mu.Unlock()
		if s.refuse {
			writeJSON(w, 401, map[string]any{"error": "Invalid User name or password."})
			return
		}
		w.Header().Set("access-token", tok)
		writeJSON(w, 200, map[string]any{"token": tok, "expires_in": 3600})
		return
	}
	tok := r.Header.Get("access-token")
	if !s.headerTk {
		tok = r.Header.Get("Authorization")
		if len(tok) > 7 {
			tok = tok[7:]
		}
	}
	s.mu.Lock()
	s.api++
	ok := s.valid[tok]
	next := ""
	if ok && s.rotate {
		delete(s.valid, tok)
		next = fmt.Sprintf("%s.r%d", tok, s.api)
		s.valid[next] = true
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, 401, map[string]any{"errors": []any{"You need to sign in or sign up before continuing."}})
		return
	}
	if next != "" {
		w.Header().Set("access-token", next)
	}
	writeJSON(w, 200, map[string]any{"ok": true})
}

func (s *tokenServer) invalidateAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.valid)
}

func (s *tokenServer) counts() (logins, api int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins, s.api
}

func tokenConnector(base string, headers bool) *engine.Connector {
	tl := &engine.TokenLoginAuth{Path: "/login", Method: "POST", Body: map[string]any{"password": map[string]any{"secret": "PASSWORD"}}}
	if headers {
		tl.SendBackHeaders = []string{"access-token"}
	} else {
		tl.Token, tl.TokenHeader, tl.TokenPrefix = ".token", "Authorization", "Bearer "
		tl.ExpiresIn = ".expires_in"
	}
	return connector(base, func(c *engine.Connector) { c.Auth.Spec = engine.AuthSpec{TokenLogin: tl} })
}

func TestTokenLogin_RotatedHeadersAreSentBack(t *testing.T) {
	ts := &tokenServer{valid: map[string]bool{}, rotate: true, headerTk: true}
	srv := serve(t, ts.handler)
	c, _ := newClient(t, tokenConnector(srv.URL, true), testSecrets)
	for i := range 5 {
		if _, err := c.Do(t.Context(), &rest.Call{Path: "/api"}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if logins, api := ts.counts(); logins != 1 || api != 5 {
		t.Errorf("logins, API calls = %d, %d; want 1, 5 (each call used the rotated header)", logins, api)
	}
}

func TestTokenLogin_401ReloginsExactlyOnce(t *testing.T) {
	tests := []struct {
		name       string
		always401  bool
		wantErr    bool
		wantLogins int
		wantAPI    int
	}{
		{name: "token revoked: one re-login, call succeeds", wantLogins: 2, wantAPI: 3},
		{name: "refused after re-login: auth error", always401: true, wantErr: true, wantLogins: 2, wantAPI: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := &tokenServer{valid: map[string]bool{}}
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.always401 && r.URL.Path != "/login" {
					ts.invalidateAll()
				}
				ts.handler(w, r)
			})
			c, _ := newClient(t, tokenConnector(srv.URL, false), testSecrets)
			if !tc.always401 {
				if _, err := c.Do(t.Context(), &rest.Call{Path: "/api"}); err != nil {
					t.Fatal(err)
				}
				ts.invalidateAll()
			}
			_, err := c.Do(t.Context(), &rest.Call{Path: "/api", Method: "POST", Body: map[string]any{"a": 1}})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && classOf(err) != engine.ClassAuth {
				t.Errorf("class = %s, want auth", classOf(err))
			}
			logins, api := ts.counts()
			if logins != tc.wantLogins || api != tc.wantAPI {
				t.Errorf("logins, API calls = %d, %d; want %d, %d", logins, api, tc.wantLogins, tc.wantAPI)
			}
		})
	}
}

func TestTokenLogin_ConcurrentCallsShareOneLogin(t *testing.T) {
	ts := &tokenServer{valid: map[string]bool{}, delay: 20 * time.Millisecond}
	srv := serve(t, ts.handler)
	c, _ := newClient(t, tokenConnector(srv.URL, false), testSecrets, func(o *rest.Options) { o.Clock = engine.SystemClock{} })
	run := func() {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if _, err := c.Do(t.Context(), &rest.Call{Path: "/api"}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	run()
	if logins, _ := ts.counts(); logins != 1 {
		t.Errorf("first wave: logins = %d, want 1", logins)
	}
	// Every token is revoked: 20 concurrent 401s share one re-login.
	ts.invalidateAll()
	run()
	if logins, api := ts.counts(); logins != 2 || api > 60 {
		t.Errorf("after revocation: logins, API calls = %d, %d; want 2, <= 60", logins, api)
	}
}

func TestTokenLogin_RefusedLoginIsNotRepeated(t *testing.T) {
	ts := &tokenServer{valid: map[string]bool{}, refuse: true}
	srv := serve(t, ts.handler)
	c, _ := newClient(t, tokenConnector(srv.URL, false), testSecrets)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			_, err := c.Do(t.Context(), &rest.Call{Path: "/api"})
			if classOf(err) != engine.ClassAuth {
				t.Errorf("err = %v, want an auth error", err)
			}
		})
	}
	wg.Wait()
	if logins, api := ts.counts(); logins != 1 || api != 0 {
		t.Errorf("logins, API calls = %d, %d; want 1, 0 (no login storm, which locks accounts)", logins, api)
	}
}

func TestTokenLogin_ReloginAheadOfExpiry(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*engine.TokenLoginAuth)
		advance []time.Duration
		want    int
	}{
		// expires_in 3600 s: renewed a minute early.
		{"expires_in, still valid", nil, []time.Duration{3500 * time.Second}, 1},
		{"expires_in, inside the last minute", nil, []time.Duration{3545 * time.Second}, 2},
		{"ttl", func(tl *engine.TokenLoginAuth) { tl.ExpiresIn = ""; tl.TTL = "10m" }, []time.Duration{9 * time.Minute, 30 * time.Second}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := &tokenServer{valid: map[string]bool{}}
			srv := serve(t, ts.handler)
			conn := tokenConnector(srv.URL, false)
			if tc.edit != nil {
				tc.edit(conn.Auth.Spec.TokenLogin)
			}
			clock := newFakeClock()
			c, _ := newClient(t, conn, testSecrets, func(o *rest.Options) { o.Clock = clock })
			if _, err := c.Do(t.Context(), &rest.Call{Path: "/api"}); err != nil {
				t.Fatal(err)
			}
			for _, d := range tc.advance {
				clock.Advance(d)
				if _, err := c.Do(t.Context(), &rest.Call{Path: "/api"}); err != nil {
					t.Fatal(err)
				}
			}
			if logins, _ := ts.counts(); logins != tc.want {
				t.Errorf("logins = %d, want %d", logins, tc.want)
			}
			if got := c.Stats().Logins; got != int64(tc.want) {
				t.Errorf("Stats().Logins = %d, want %d", got, tc.want)
			}
		})
	}
}
