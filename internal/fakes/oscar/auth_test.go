package oscar_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/oscar"
)

func TestServer_SignIn(t *testing.T) {
	badLogin := map[string]any{"success": false, "errors": []any{"Invalid login credentials. Please try again."}}
	tests := []struct {
		name     string
		path     string
		ct       string
		body     string
		wantCode int
		wantBody map[string]any // nil: a successful sign-in
	}{
		{"json", pathSignIn, "application/json", `{"email":"api.user@example.org","password":"oscar-pass"}`, 200, nil},
		{"email is case-insensitive", pathSignIn, "application/json", `{"email":" API.User@Example.org","password":"oscar-pass"}`, 200, nil},
		{"form body", pathSignIn, "application/x-www-form-urlencoded", "email=api.user%40example.org&password=oscar-pass", 200, nil},
		{"wrong password", pathSignIn, "application/json", `{"email":"api.user@example.org","password":"nope"}`, 401, badLogin},
		{"unknown user", pathSignIn, "application/json", `{"email":"someone@example.org","password":"oscar-pass"}`, 401, badLogin},
		{"no body", pathSignIn, "application/json", ``, 401, badLogin},
		{"plural path does not exist", "/api/v1/admin_auths/sign_in", "application/json", `{"email":"api.user@example.org","password":"oscar-pass"}`, 404, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := start(t, oscar.Options{})
			req, _ := http.NewRequestWithContext(t.Context(), "POST", c.base+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ct)
			res, err := c.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tc.wantCode {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.wantCode)
			}
			if tc.wantCode != 200 {
				if tc.wantBody != nil {
					r := c.do("POST", tc.path, tc.body)
					if diff := cmp.Diff(tc.wantBody, r.obj(t)); diff != "" {
						t.Errorf("body (-want +got):\n%s", diff)
					}
				}
				return
			}
			for _, h := range []string{"access-token", "token-type", "client", "expiry", "uid"} {
				if res.Header.Get(h) == "" {
					t.Errorf("header %s missing", h)
				}
			}
			if got := res.Header.Get("token-type"); got != "Bearer" {
				t.Errorf("token-type %q, want Bearer", got)
			}
			if got := res.Header.Get("uid"); got != oscar.DefaultEmail {
				t.Errorf("uid %q", got)
			}
			wantExpiry := testNow.Add(oscar.DefaultTokenLifespan).Unix()
			if got := res.Header.Get("expiry"); got != strconv.FormatInt(wantExpiry, 10) {
				t.Errorf("expiry %s, want %d (a week, unix seconds)", got, wantExpiry)
			}
		})
	}
}

func TestServer_SignInCustomUser(t *testing.T) {
	_, c := start(t, oscar.Options{Email: "ops@example.org", Password: "s3cret"})
	tests := []struct {
		name  string
		creds map[string]string
		want  int
	}{
		{"configured user", map[string]string{"email": "ops@example.org", "password": "s3cret"}, 200},
		{"default user is gone", map[string]string{"email": oscar.DefaultEmail, "password": oscar.DefaultPassword}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.do("POST", pathSignIn, tc.creds)
			if r.code != tc.want {
				t.Fatalf("status %d, want %d", r.code, tc.want)
			}
			if tc.want == 200 && r.hdr.Get("uid") != "ops@example.org" {
				t.Errorf("uid %q", r.hdr.Get("uid"))
			}
		})
	}
}

func TestServer_SignInBody(t *testing.T) {
	_, c := start(t, oscar.Options{})
	r := c.signIn()
	want := map[string]any{"data": map[string]any{
		"id": float64(7), "email": oscar.DefaultEmail, "provider": "email", "uid": oscar.DefaultEmail,
		"first_name": "API", "last_name": "User", "token": nil, "role": "viewer",
	}}
	if diff := cmp.Diff(want, r.obj(t)); diff != "" {
		t.Errorf("sign-in body (-want +got):\n%s", diff)
	}
}

func TestServer_AuthHeaders(t *testing.T) {
	signInFirst := map[string]any{"errors": []any{"You need to sign in or sign up before continuing."}}
	tests := []struct {
		name    string
		mangle  func(h http.Header) http.Header
		query   bool // send the headers as query parameters instead
		advance time.Duration
		expire  bool
		want    int
	}{
		{name: "valid", mangle: keep, want: 200},
		{name: "as query parameters", mangle: keep, query: true, want: 200},
		{name: "no headers", mangle: func(http.Header) http.Header { return http.Header{} }, want: 401},
		{name: "wrong token", mangle: set("access-token", "forged"), want: 401},
		{name: "wrong client", mangle: set("client", "other-device"), want: 401},
		{name: "wrong uid", mangle: set("uid", "other@example.org"), want: 401},
		{name: "missing uid", mangle: del("uid"), want: 401},
		{name: "one second before expiry", mangle: keep, advance: oscar.DefaultTokenLifespan - time.Second, want: 200},
		{name: "expired after a week", mangle: keep, advance: oscar.DefaultTokenLifespan, want: 401},
		{name: "invalidated by ExpireTokens", mangle: keep, expire: true, want: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{})
			s.Advance(tc.advance)
			if tc.expire {
				s.ExpireTokens()
			}
			h := tc.mangle(c.hdr.Clone())
			path := pathClients
			if tc.query {
				q := url.Values{}
				for _, k := range []string{"access-token", "client", "uid"} {
					q.Set(k, h.Get(k))
				}
				path += "?" + q.Encode()
				h = http.Header{}
			}
			c.hdr = h
			r := c.do("GET", path, nil)
			if r.code != tc.want {
				t.Fatalf("status %d, want %d: %s", r.code, tc.want, r.body)
			}
			if tc.want == 401 {
				if diff := cmp.Diff(signInFirst, r.obj(t)); diff != "" {
					t.Errorf("401 body (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func keep(h http.Header) http.Header { return h }

func set(k, v string) func(http.Header) http.Header {
	return func(h http.Header) http.Header { h.Set(k, v); return h }
}

func del(k string) func(http.Header) http.Header {
	return func(h http.Header) http.Header { h.Del(k); return h }
}

func TestServer_TokenLifespanOption(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{TokenLifespan: time.Minute})
	s.Advance(59 * time.Second)
	if r := c.do("GET", pathClients, nil); r.code != 200 {
		t.Fatalf("within lifespan: %d", r.code)
	}
	s.Advance(time.Second)
	if r := c.do("GET", pathClients, nil); r.code != 401 {
		t.Fatalf("after lifespan: %d, want 401", r.code)
	}
}

// The real server does not rotate: one header set serves every call, and
// each answer echoes it.
func TestServer_HeadersNotRotated(t *testing.T) {
	_, c := startAuthed(t, oscar.Options{})
	first := c.hdr.Get("access-token")
	for i := range 3 {
		r := c.do("GET", pathClients, nil)
		if r.code != 200 {
			t.Fatalf("call %d: %d", i, r.code)
		}
		if got := r.hdr.Get("access-token"); got != first {
			t.Fatalf("call %d echoed access-token %q, want the sign-in one %q", i, got, first)
		}
	}
}

func TestServer_RotateHeadersOption(t *testing.T) {
	tests := []struct {
		name    string
		advance time.Duration
		want    int
	}{
		{"old token inside the grace", 4 * time.Second, 200},
		{"old token after the grace", 5 * time.Second, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{RotateHeaders: true})
			old := c.hdr.Get("access-token")
			r := c.do("GET", pathClients, nil)
			if r.code != 200 {
				t.Fatalf("first call: %d", r.code)
			}
			fresh := r.hdr.Get("access-token")
			if fresh == "" || fresh == old {
				t.Fatalf("answer carried access-token %q, want a new one", fresh)
			}
			s.Advance(tc.advance)
			if r := c.do("GET", pathClients, nil); r.code != tc.want {
				t.Errorf("old token: %d, want %d", r.code, tc.want)
			}
			c.hdr.Set("access-token", fresh)
			if r := c.do("GET", pathClients, nil); r.code != 200 {
				t.Errorf("new token: %d, want 200", r.code)
			}
		})
	}
}

// Each sign-in adds a header set; the eleventh evicts the oldest.
func TestServer_TenHeaderSetsPerUser(t *testing.T) {
	s, c0 := start(t, oscar.Options{})
	var sets []*conn
	for range 11 {
		c := &conn{tb: t, base: c0.base, hdr: http.Header{}, http: c0.http}
		c.signIn()
		sets = append(sets, c)
		s.Advance(time.Second) // the expiries order the sets
	}
	if got := s.HeaderSets(); got != 10 {
		t.Errorf("HeaderSets = %d, want 10", got)
	}
	if r := sets[0].do("GET", pathClients, nil); r.code != 401 {
		t.Errorf("oldest set: %d, want 401 (evicted)", r.code)
	}
	for i, c := range sets[1:] {
		if r := c.do("GET", pathClients, nil); r.code != 200 {
			t.Errorf("set %d: %d, want 200", i+1, r.code)
		}
	}
}

func TestServer_SignOut(t *testing.T) {
	_, c := startAuthed(t, oscar.Options{})
	r := c.do("DELETE", pathSignOut, nil)
	if diff := cmp.Diff(map[string]any{"success": true}, r.obj(t)); r.code != 200 || diff != "" {
		t.Fatalf("first sign-out: %d (-want +got):\n%s", r.code, diff)
	}
	r = c.do("DELETE", pathSignOut, nil)
	want := map[string]any{"success": false, "errors": []any{"User was not found or was not logged in."}}
	if diff := cmp.Diff(want, r.obj(t)); r.code != 404 || diff != "" {
		t.Errorf("second sign-out: %d (-want +got):\n%s", r.code, diff)
	}
	if r := c.do("GET", pathClients, nil); r.code != 401 {
		t.Errorf("after sign-out: %d, want 401", r.code)
	}
}

func TestServer_ValidateToken(t *testing.T) {
	tests := []struct {
		name     string
		expire   bool
		wantCode int
		wantKeys []string
	}{
		{"valid", false, 200, []string{"data", "success"}},
		{"expired", true, 401, []string{"errors", "success"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{})
			if tc.expire {
				s.ExpireTokens()
			}
			r := c.do("GET", pathValidate, nil)
			if r.code != tc.wantCode {
				t.Fatalf("status %d, want %d", r.code, tc.wantCode)
			}
			var keys []string
			for k := range r.obj(t) {
				keys = append(keys, k)
			}
			if diff := cmp.Diff(tc.wantKeys, keys, sortStrings); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
}

// update_statuses and check_duplication have no authentication in the real
// server; StrictAuth closes them.
func TestServer_OpenEndpoints(t *testing.T) {
	tests := []struct {
		name   string
		strict bool
		method string
		path   string
		body   any
		want   int
	}{
		{"update_statuses open", false, "PUT", pathStatuses, map[string]any{"data": []any{}}, 200},
		{"update_statuses strict", true, "PUT", pathStatuses, map[string]any{"data": []any{}}, 401},
		{"check_duplication open", false, "GET", pathDup + "?given_name=x", nil, 200},
		{"check_duplication strict", true, "GET", pathDup + "?given_name=x", nil, 401},
		{"organizations open", true, "GET", pathOrgs, nil, 200},
		{"clients needs auth", false, "GET", pathClients, nil, 401},
		{"upsert needs auth", false, "POST", pathUpsert, map[string]any{}, 401},
		{"update_links needs auth", false, "PUT", pathLinks, map[string]any{}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := start(t, oscar.Options{StrictAuth: tc.strict})
			if r := c.do(tc.method, tc.path, tc.body); r.code != tc.want {
				t.Errorf("status %d, want %d: %s", r.code, tc.want, r.body)
			}
		})
	}
}
