package ping

import (
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// oauthError is the B2C token endpoint's error body.
func oauthError(code, desc string) answer {
	return answer{status: http.StatusBadRequest, body: map[string]string{
		"error": code, "error_description": desc,
	}}
}

// token serves the B2C resource-owner password grant (ping.md §2). The
// checks run in the order B2C reports them: request shape, client, scope,
// then credentials.
func (s *Server) token(r *http.Request) answer {
	if r.Method != http.MethodPost {
		return oauthError("invalid_request", "AADB2C90083: The request is missing required parameter: grant_type.")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return oauthError("invalid_request", "The token request must be form-encoded (application/x-www-form-urlencoded).")
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return oauthError("invalid_request", "The token request body could not be parsed.")
	}
	f := r.PostForm
	switch gt := f.Get("grant_type"); {
	case gt == "":
		return oauthError("invalid_request", "AADB2C90083: The request is missing required parameter: grant_type.")
	case gt != "password":
		return oauthError("unsupported_grant_type", "The grant type '"+gt+"' is not supported by this policy.")
	}
	if f.Get("client_id") != s.opts.ClientID {
		return oauthError("invalid_client", "The client_id is not registered in this tenant.")
	}
	if !slices.Contains(strings.Fields(f.Get("scope")), s.opts.Scope) {
		return oauthError("invalid_scope", "AADB2C90055: The scope provided in the request must specify a resource, such as '"+s.opts.Scope+"'.")
	}
	if rt := f.Get("response_type"); rt != "" && !slices.Contains(strings.Fields(rt), "token") {
		return oauthError("unsupported_response_type", "The response_type '"+rt+"' is not supported; use 'token'.")
	}
	if f.Get("username") != s.opts.Username || f.Get("password") != s.opts.Password {
		return oauthError("invalid_grant", "AADB2C90225: The username or password provided in the request are invalid.")
	}
	s.mu.Lock()
	tok := "fake." + strings.ReplaceAll(s.newID()+s.newID(), "-", "")
	s.tokens[tok] = s.opts.Now().Add(s.opts.TokenTTL)
	s.mu.Unlock()
	secs := int(s.opts.TokenTTL.Seconds())
	var expiresIn any = secs
	if s.opts.TokenExpiresInAsString {
		expiresIn = strconv.Itoa(secs)
	}
	return answer{
		status: http.StatusOK,
		header: http.Header{"Cache-Control": {"no-store"}, "Pragma": {"no-cache"}},
		body: map[string]any{
			"access_token": tok,
			"token_type":   "Bearer",
			"expires_in":   expiresIn,
		},
	}
}

// gateway applies the APIM checks in APIM's order: subscription key first,
// then the validate-jwt policy on the bearer token. The bodies are APIM's.
func (s *Server) gateway(r *http.Request) (answer, bool) {
	key := r.Header.Get("Ocp-Apim-Subscription-Key")
	if key == "" {
		// APIM also takes the key as a query parameter.
		key = r.URL.Query().Get("subscription-key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case key == "":
		return apim(http.StatusUnauthorized, "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."), false
	case key != s.opts.SubscriptionKey || s.keyRevoked:
		return apim(http.StatusUnauthorized, "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription."), false
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	exp, ok := s.tokens[strings.TrimSpace(tok)]
	if !strings.EqualFold(scheme, "Bearer") || !ok || !s.opts.Now().Before(exp) {
		return apim(http.StatusUnauthorized, "Unauthorized. Access token is missing or invalid."), false
	}
	return answer{}, true
}

// ExpireTokens makes every token issued so far expire now; the next API call
// with one of them gets 401, and a new login works.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.tokens {
		delete(s.tokens, k)
	}
}

// RevokeSubscriptionKey makes the configured subscription key invalid, as an
// APIM administrator regenerating it would; every API call gets 401 after.
func (s *Server) RevokeSubscriptionKey() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keyRevoked = true
}
