package ping_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/fakes/ping"
)

func TestServer_Token(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(url.Values)
		wantSt    int
		wantError string // the OAuth "error" code, "" on success
	}{
		{"password grant", func(url.Values) {}, http.StatusOK, ""},
		{"no response_type", func(f url.Values) { f.Del("response_type") }, http.StatusOK, ""},
		{"extra scopes", func(f url.Values) { f.Set("scope", "openid "+ping.DefaultScope+" offline_access") }, http.StatusOK, ""},
		{"wrong password", func(f url.Values) { f.Set("password", "nope") }, http.StatusBadRequest, "invalid_grant"},
		{"wrong username", func(f url.Values) { f.Set("username", "someone@example.org") }, http.StatusBadRequest, "invalid_grant"},
		{"client credentials grant", func(f url.Values) { f.Set("grant_type", "client_credentials") }, http.StatusBadRequest, "unsupported_grant_type"},
		{"no grant_type", func(f url.Values) { f.Del("grant_type") }, http.StatusBadRequest, "invalid_request"},
		{"unknown client", func(f url.Values) { f.Set("client_id", "00000000-0000-4000-8000-000000000000") }, http.StatusBadRequest, "invalid_client"},
		{"no scope", func(f url.Values) { f.Del("scope") }, http.StatusBadRequest, "invalid_scope"},
		{"code response_type", func(f url.Values) { f.Set("response_type", "code") }, http.StatusBadRequest, "unsupported_response_type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c := start(t, ping.Options{})
			f := goodTokenForm()
			tc.edit(f)
			st, body := c.tokenRequest(f)
			if st != tc.wantSt {
				t.Fatalf("status %d, want %d: %v", st, tc.wantSt, body)
			}
			if tc.wantError != "" {
				if body["error"] != tc.wantError || body["error_description"] == "" {
					t.Errorf("body %v, want error %q with a description", body, tc.wantError)
				}
				return
			}
			got := map[string]any{"token_type": body["token_type"], "expires_in": body["expires_in"]}
			want := map[string]any{"token_type": "Bearer", "expires_in": 3600.0}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("token answer (-want +got):\n%s", diff)
			}
			if tok, _ := body["access_token"].(string); tok == "" {
				t.Errorf("no access_token in %v", body)
			}
		})
	}

	t.Run("form body required", func(t *testing.T) {
		_, c := start(t, ping.Options{})
		req, _ := http.NewRequest(http.MethodPost, c.base+ping.TokenPath, strings.NewReader(`{"grant_type":"password"}`))
		req.Header.Set("Content-Type", "application/json")
		if st, body := c.do(req); st != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("JSON token request: %d %v, want 400 invalid_request", st, body)
		}
	})
	t.Run("expires_in follows TokenTTL and may be a string", func(t *testing.T) {
		_, c := start(t, ping.Options{TokenTTL: 5 * time.Minute, TokenExpiresInAsString: true})
		_, body := c.tokenRequest(goodTokenForm())
		if body["expires_in"] != "300" {
			t.Errorf("expires_in = %#v, want \"300\"", body["expires_in"])
		}
	})
	t.Run("other tenant path is not the token endpoint", func(t *testing.T) {
		_, c := start(t, ping.Options{})
		req, _ := http.NewRequest(http.MethodPost, c.base+"/other.onmicrosoft.com/"+ping.TokenPolicy+"/oauth2/v2.0/token",
			strings.NewReader(goodTokenForm().Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if st, _ := c.do(req); st != http.StatusNotFound {
			t.Errorf("status %d, want 404", st)
		}
	})
}

func TestServer_Gateway(t *testing.T) {
	const (
		missingKey = "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."
		invalidKey = "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."
		badToken   = "Unauthorized. Access token is missing or invalid."
	)
	retrieve := retrieveBody(ping.SHPPendingInterventions)
	tests := []struct {
		name    string
		setup   func(*ping.Server, *fakeClock)
		path    string
		body    any
		edit    func(*http.Request)
		wantSt  int
		wantMsg string // APIM "message", or the envelope's ErrorMessage prefix for 400s
	}{
		{"all good", nil, ping.RetrievePath, retrieve, nil, http.StatusOK, ""},
		{"key as query parameter", nil, ping.RetrievePath + "?subscription-key=" + ping.DefaultSubscriptionKey, retrieve,
			func(r *http.Request) { r.Header.Del("Ocp-Apim-Subscription-Key") }, http.StatusOK, ""},
		{"missing key", nil, ping.RetrievePath, retrieve,
			func(r *http.Request) { r.Header.Del("Ocp-Apim-Subscription-Key") }, http.StatusUnauthorized, missingKey},
		{"wrong key", nil, ping.RetrievePath, retrieve,
			func(r *http.Request) { r.Header.Set("Ocp-Apim-Subscription-Key", "feedfacefeedfacefeedfacefeedface") }, http.StatusUnauthorized, invalidKey},
		{"revoked key", func(s *ping.Server, _ *fakeClock) { s.RevokeSubscriptionKey() }, ping.RetrievePath, retrieve, nil,
			http.StatusUnauthorized, invalidKey},
		{"missing bearer", nil, ping.RetrievePath, retrieve,
			func(r *http.Request) { r.Header.Del("Authorization") }, http.StatusUnauthorized, badToken},
		{"unknown bearer", nil, ping.RetrievePath, retrieve,
			func(r *http.Request) { r.Header.Set("Authorization", "Bearer forged") }, http.StatusUnauthorized, badToken},
		{"basic instead of bearer", nil, ping.RetrievePath, retrieve,
			func(r *http.Request) { r.SetBasicAuth(ping.DefaultUsername, ping.DefaultPassword) }, http.StatusUnauthorized, badToken},
		{"tokens expired now", func(s *ping.Server, _ *fakeClock) { s.ExpireTokens() }, ping.RetrievePath, retrieve, nil,
			http.StatusUnauthorized, badToken},
		{"token lived past expires_in", func(_ *ping.Server, c *fakeClock) { c.Add(time.Hour) }, ping.RetrievePath, retrieve, nil,
			http.StatusUnauthorized, badToken},
		{"token just inside expires_in", func(_ *ping.Server, c *fakeClock) { c.Add(time.Hour - time.Second) }, ping.RetrievePath, retrieve, nil,
			http.StatusOK, ""},
		{"unknown operation", nil, "/primes/fetch/paging/v2/retrievedata", retrieve, nil, http.StatusNotFound, "Resource not found"},
		{"GET on a POST operation", nil, ping.RetrievePath, retrieve,
			func(r *http.Request) { r.Method = http.MethodGet }, http.StatusNotFound, "Resource not found"},
		{"form body", nil, ping.RetrievePath, retrieve,
			func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, http.StatusUnsupportedMediaType, ""},
		{"wrong PartnerId in body", nil, ping.RetrievePath,
			map[string]any{"ShippingProcessId": "SHP-2747", "PartnerId": "PNR-0001", "InteropID": ping.DefaultInteropID},
			nil, http.StatusBadRequest, "PartnerId 'PNR-0001' is not valid"},
		{"no PartnerId on retrieve", nil, ping.RetrievePath,
			map[string]any{"ShippingProcessId": "SHP-2747", "InteropID": ping.DefaultInteropID},
			nil, http.StatusBadRequest, "PartnerId is required"},
		{"wrong InteropID", nil, ping.RetrievePath,
			map[string]any{"ShippingProcessId": "SHP-2747", "PartnerId": ping.DefaultPartnerID, "InteropID": "INT-0001"},
			nil, http.StatusBadRequest, "InteropID 'INT-0001' is not configured"},
		{"path partner is not the deployment's", nil, ingestPath("PNR-0001", "data"),
			syncBody(ping.SHPTransferStatus, ackItem("6a3f0e52-4d5b-4c8e-9a1f-2b3c4d5e6f70", "125080002")),
			nil, http.StatusBadRequest, "PartnerId 'PNR-0001' in the path"},
		{"path partner differs from body partner", nil, ingestPath(ping.DefaultPartnerID, "data"),
			map[string]any{"ShippingProcessId": "SHP-2748", "PartnerId": "PNR-0001", "InteropId": ping.DefaultInteropID,
				"Data": []any{ackItem("6a3f0e52-4d5b-4c8e-9a1f-2b3c4d5e6f70", "125080002")}},
			nil, http.StatusBadRequest, "PartnerId 'PNR-0001' in the body does not match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newClock()
			srv, c := start(t, ping.Options{Interventions: 2, Now: clock.Now})
			if tc.setup != nil {
				tc.setup(srv, clock)
			}
			st, body := c.postWith(tc.path, tc.body, tc.edit)
			if st != tc.wantSt {
				t.Fatalf("status %d, want %d: %v", st, tc.wantSt, body)
			}
			switch {
			case st == http.StatusUnauthorized || st == http.StatusNotFound:
				want := map[string]any{"statusCode": float64(st), "message": tc.wantMsg}
				if diff := cmp.Diff(want, body); diff != "" {
					t.Errorf("APIM body (-want +got):\n%s", diff)
				}
			case st == http.StatusBadRequest:
				msg, _ := body["ErrorMessage"].(string)
				if !strings.HasPrefix(msg, tc.wantMsg) {
					t.Errorf("ErrorMessage %q, want prefix %q", msg, tc.wantMsg)
				}
				if _, ok := body["Data"]; !ok {
					t.Errorf("400 body is not the PING envelope: %v", body)
				}
			}
		})
	}

	t.Run("a fresh login works after expiry", func(t *testing.T) {
		srv, c := start(t, ping.Options{})
		srv.ExpireTokens()
		if st, _ := c.post(ping.RetrievePath, retrieve); st != http.StatusUnauthorized {
			t.Fatalf("old token: status %d, want 401", st)
		}
		c.token = c.login()
		if st, body := c.post(ping.RetrievePath, retrieve); st != http.StatusOK {
			t.Fatalf("new token: status %d, %v", st, body)
		}
	})
}
