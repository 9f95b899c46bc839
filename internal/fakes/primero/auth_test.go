package primero_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"casesync/internal/fakes/primero"

	"github.com/google/go-cmp/cmp"
)

func TestServer_LoginReturnsTokenInBodyAndHeader(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
	}{
		{"json", "application/json", `{"user":{"user_name":"openfn_cp_user","password":"primero-pass"}}`},
		{"form", "application/x-www-form-urlencoded", url.Values{"user[user_name]": {"openfn_cp_user"}, "user[password]": {pass}}.Encode()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := start(t, primero.Options{})
			r := callWith(t, srv, "POST", "/api/v2/tokens", tc.body, func(r *http.Request) { r.Header.Set("Content-Type", tc.contentType) })
			wantStatus(t, r, http.StatusOK)
			body := r.json(t)
			tok, _ := body["token"].(string)
			if tok == "" || strings.Count(tok, ".") != 2 {
				t.Fatalf("token = %q, want a JWT", tok)
			}
			if got := r.header.Get("Authorization"); got != "Bearer "+tok {
				t.Errorf("Authorization header = %q, want the body's token", got)
			}
			if diff := cmp.Diff(map[string]any{"id": float64(1), "user_name": "openfn_cp_user", "token": tok}, body); diff != "" {
				t.Errorf("login body (-want +got):\n%s", diff)
			}
			if !strings.Contains(r.header.Get("Set-Cookie"), "primero_token=") {
				t.Errorf("no primero_token cookie: %q", r.header.Get("Set-Cookie"))
			}
			// The token works on the data API.
			got := callWith(t, srv, "GET", "/api/v2/cases", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
			wantStatus(t, got, http.StatusOK)
		})
	}
}

func TestServer_UnauthorizedShape(t *testing.T) {
	_, srv := start(t, primero.Options{})
	tests := []struct {
		name string
		edit func(*http.Request)
		want string
	}{
		{"no credentials", nil, "You need to sign in or sign up before continuing."},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth("openfn_cp_user", "nope") }, "Invalid User name or password."},
		{"unknown user", func(r *http.Request) { r.SetBasicAuth("ghost", pass) }, "Invalid User name or password."},
		{"garbage bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, "Not enough or too many segments"},
		{"forged bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer a.b.c") }, "Signature verification failed"},
		{"disabled user", func(r *http.Request) { r.SetBasicAuth("retired_user", pass) }, "Your account is not activated yet."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := callWith(t, srv, "GET", "/api/v2/cases", nil, tc.edit)
			wantStatus(t, r, http.StatusUnauthorized)
			if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="Primero" charset="UTF8"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if diff := cmp.Diff(map[string]any{"error": tc.want}, r.json(t)); diff != "" {
				t.Errorf("401 body, never the envelope (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServer_BasicAuthOnEveryRoute(t *testing.T) {
	_, srv := start(t, primero.Options{Cases: 3})
	for _, p := range []string{"/api/v2/cases", "/api/v2/users", "/api/v2/lookups", "/api/v2/agencies", "/api/v2/locations", "/api/v2/forms", "/api/v2/primero_modules"} {
		t.Run(p, func(t *testing.T) {
			wantStatus(t, call(t, srv, "GET", p, "openfn_cp_user", nil), http.StatusOK)
			wantStatus(t, call(t, srv, "GET", p, "", nil), http.StatusUnauthorized)
		})
	}
}

func TestServer_TokenExpiresAfterTTL(t *testing.T) {
	s, srv := start(t, primero.Options{TokenTTL: 2 * time.Minute})
	tok := bearerLogin(t, srv, "openfn_cp_user")
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	wantStatus(t, callWith(t, srv, "GET", "/api/v2/cases", nil, bearer), http.StatusOK)
	s.Advance(2 * time.Minute)
	r := callWith(t, srv, "GET", "/api/v2/cases", nil, bearer)
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.json(t)["error"]; got != "Signature has expired" {
		t.Errorf("error = %v", got)
	}
	// A new login works again: the client's re-login path.
	tok2 := bearerLogin(t, srv, "openfn_cp_user")
	wantStatus(t, callWith(t, srv, "GET", "/api/v2/cases", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok2) }), http.StatusOK)
}

// bearerLogin logs in with JSON and returns the JWT.
func bearerLogin(tb testing.TB, srv *httptest.Server, name string) string {
	tb.Helper()
	r := callWith(tb, srv, "POST", "/api/v2/tokens", `{"user":{"user_name":"`+name+`","password":"`+pass+`"}}`, nil)
	wantStatus(tb, r, http.StatusOK)
	tok, _ := r.json(tb)["token"].(string)
	return tok
}

func TestServer_ExpireTokensAnswers401(t *testing.T) {
	s, srv := start(t, primero.Options{})
	tok := bearerLogin(t, srv, "openfn_cp_user")
	s.ExpireTokens()
	r := callWith(t, srv, "GET", "/api/v2/cases", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) })
	wantStatus(t, r, http.StatusUnauthorized)
	// Basic auth is not a token and keeps working.
	wantStatus(t, call(t, srv, "GET", "/api/v2/cases", "openfn_cp_user", nil), http.StatusOK)
}

func TestServer_TokenRefreshAndLogout(t *testing.T) {
	_, srv := start(t, primero.Options{})
	tok := bearerLogin(t, srv, "openfn_cp_user")
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	// A POST to /tokens with a live Bearer and no credentials refreshes.
	r := callWith(t, srv, "POST", "/api/v2/tokens", "{}", bearer(tok))
	wantStatus(t, r, http.StatusOK)
	fresh, _ := r.json(t)["token"].(string)
	if fresh == "" || fresh == tok {
		t.Fatalf("refresh token = %q, want a new token", fresh)
	}
	// Several tokens per user are live at once (≤ v2.10).
	wantStatus(t, callWith(t, srv, "GET", "/api/v2/cases", nil, bearer(tok)), http.StatusOK)
	r = callWith(t, srv, "DELETE", "/api/v2/tokens", nil, bearer(tok))
	wantStatus(t, r, http.StatusOK)
	if diff := cmp.Diff(map[string]any{}, r.json(t)); diff != "" {
		t.Errorf("logout body (-want +got):\n%s", diff)
	}
	wantStatus(t, callWith(t, srv, "GET", "/api/v2/cases", nil, bearer(tok)), http.StatusUnauthorized)
	wantStatus(t, callWith(t, srv, "GET", "/api/v2/cases", nil, bearer(fresh)), http.StatusOK)
}

func TestServer_LockoutAfterSixFailures(t *testing.T) {
	s, srv := start(t, primero.Options{})
	bad := func(r *http.Request) { r.SetBasicAuth("mgrpnh", "wrong") }
	good := func(r *http.Request) { r.SetBasicAuth("mgrpnh", pass) }
	var texts []any
	for i := 0; i < 6; i++ {
		texts = append(texts, callWith(t, srv, "GET", "/api/v2/cases", nil, bad).json(t)["error"])
	}
	want := []any{
		"Invalid User name or password.", "Invalid User name or password.", "Invalid User name or password.",
		"Invalid User name or password.", "Invalid User name or password.", "Your account is locked.",
	}
	if diff := cmp.Diff(want, texts); diff != "" {
		t.Errorf("failure texts (-want +got):\n%s", diff)
	}
	r := callWith(t, srv, "GET", "/api/v2/cases", nil, good)
	wantStatus(t, r, http.StatusUnauthorized)
	if r.json(t)["error"] != "Your account is locked." {
		t.Errorf("right password while locked: %s", r.raw)
	}
	s.Advance(30 * time.Minute)
	wantStatus(t, callWith(t, srv, "GET", "/api/v2/cases", nil, good), http.StatusOK)
}

func TestServer_LoginThrottle(t *testing.T) {
	s, srv := start(t, primero.Options{})
	post := func(name string) reply {
		body := `{"user":{"user_name":"` + name + `","password":"primero-pass"}}`
		return callWith(t, srv, "POST", "/api/v2/tokens", body, nil)
	}
	for i := 0; i < 6; i++ {
		wantStatus(t, post("openfn_cp_user"), http.StatusOK)
	}
	// The user name is downcased and stripped of whitespace for the key.
	r := post(" OpenFn_CP_User ")
	wantStatus(t, r, http.StatusTooManyRequests)
	if got := r.header.Get("Content-Type"); got != "text/plain" {
		t.Errorf("Content-Type = %q, want text/plain", got)
	}
	if string(r.raw) != "Retry later\n" {
		t.Errorf("body = %q", r.raw)
	}
	if _, ok := r.header["Retry-After"]; ok {
		t.Errorf("Retry-After sent: real Primero sends none")
	}
	// Another user is not throttled, nor is the data API.
	wantStatus(t, post("mgrpnh"), http.StatusOK)
	wantStatus(t, call(t, srv, "GET", "/api/v2/cases", "openfn_cp_user", nil), http.StatusOK)
	s.Advance(time.Minute)
	wantStatus(t, post("openfn_cp_user"), http.StatusOK)

	// A harness may set its own limit, or none.
	for _, tc := range []struct {
		throttle, ok int
	}{{2, 2}, {-1, 20}} {
		_, srv := start(t, primero.Options{LoginThrottle: tc.throttle})
		body := `{"user":{"user_name":"openfn_cp_user","password":"primero-pass"}}`
		for i := range tc.ok {
			if r := callWith(t, srv, "POST", "/api/v2/tokens", body, nil); r.status != http.StatusOK {
				t.Fatalf("LoginThrottle %d: login %d answered %d", tc.throttle, i+1, r.status)
			}
		}
		if tc.throttle > 0 {
			wantStatus(t, callWith(t, srv, "POST", "/api/v2/tokens", body, nil), http.StatusTooManyRequests)
		}
	}
}

func TestServer_BasicOnlyMode(t *testing.T) {
	_, srv := start(t, primero.Options{AuthMode: primero.AuthBasicOnly})
	body := `{"user":{"user_name":"openfn_cp_user","password":"primero-pass"}}`
	first := callWith(t, srv, "POST", "/api/v2/tokens", body, nil)
	wantStatus(t, first, http.StatusOK)
	if diff := cmp.Diff(map[string]any{"id": float64(1), "user_name": "openfn_cp_user", "group_permission": "all"}, first.json(t)); diff != "" {
		t.Errorf("v2.11 login has no token (-want +got):\n%s", diff)
	}
	cookies := func(r reply) (session, csrf string) {
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			switch c.Name {
			case "_app_session":
				session = c.Value
			case "CSRF-TOKEN":
				csrf = c.Value
			}
		}
		return session, csrf
	}
	sess, csrf := cookies(first)
	withCookie := func(sess, csrf string) func(*http.Request) {
		return func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: "_app_session", Value: sess})
			if csrf != "" {
				r.Header.Set("X-CSRF-Token", csrf)
			}
		}
	}
	wantStatus(t, callWith(t, srv, "GET", "/api/v2/cases", nil, withCookie(sess, "")), http.StatusOK)
	// Non-GET calls with the cookie need the CSRF token.
	r := callWith(t, srv, "POST", "/api/v2/cases", newCase(nil), withCookie(sess, ""))
	wantStatus(t, r, http.StatusForbidden)
	wantStatus(t, callWith(t, srv, "POST", "/api/v2/cases", newCase(nil), withCookie(sess, csrf)), http.StatusOK)
	// Basic needs neither.
	wantStatus(t, call(t, srv, "POST", "/api/v2/cases", "openfn_cp_user", newCase(nil)), http.StatusOK)
	// A Bearer token means nothing in this mode.
	wantStatus(t, callWith(t, srv, "GET", "/api/v2/cases", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer a.b.c") }), http.StatusUnauthorized)
	// Logging in again signs the user out everywhere else.
	second := callWith(t, srv, "POST", "/api/v2/tokens", body, nil)
	wantStatus(t, second, http.StatusOK)
	r = callWith(t, srv, "GET", "/api/v2/cases", nil, withCookie(sess, ""))
	wantStatus(t, r, http.StatusUnauthorized)
	if r.json(t)["error"] != "Your session expired. Please sign in again to continue." {
		t.Errorf("old session: %s", r.raw)
	}
	sess2, _ := cookies(second)
	wantStatus(t, callWith(t, srv, "GET", "/api/v2/cases", nil, withCookie(sess2, "")), http.StatusOK)
}
