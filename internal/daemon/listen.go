package daemon

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// Listener limits. A client that sends headers without end holds a
// connection and its buffer until ReadHeaderTimeout: capping both the
// header size and the connections served at once bounds what a flood of
// such clients costs (issue 16: 1,000 connections of 1 MB headers took the
// daemon from 36 MB to 1.5 GB with net/http's 1 MB default).
const (
	// MaxHeaderBytes bounds one request's header block; webhook senders
	// and admin tools send a few hundred bytes.
	MaxHeaderBytes = 16 << 10
	// DefaultMaxConns is how many connections one listener serves at once;
	// more wait in the kernel's accept queue.
	DefaultMaxConns = 256
)

// Listen listens on addr and serves at most maxConns connections at once
// (DefaultMaxConns when maxConns <= 0).
func Listen(addr string, maxConns int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if maxConns <= 0 {
		maxConns = DefaultMaxConns
	}
	return netutil.LimitListener(ln, maxConns), nil
}

// Server is the daemon's http.Server for h, with bounded headers and
// timeouts on every phase of a request.
func Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
}

// AdminOptions guard the admin endpoints (/status, /metrics, the status
// page and POST /pipelines/{name}/run).
type AdminOptions struct {
	// Token, when set, is the bearer token every admin request must carry
	// (Authorization: Bearer TOKEN).
	Token string
	// Hosts are the Host names admin requests may carry besides the
	// loopback ones (localhost, 127.0.0.1, ::1). Checking the Host stops a
	// DNS-rebinding page in an admin's browser from reading /status or
	// starting runs.
	Hosts []string
}

// loopbackHosts are always allowed.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// guard wraps the admin endpoints: the Host must be allowed and, with a
// token, the request must carry it.
func (o AdminOptions) guard(next http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, h := range append(append([]string{}, loopbackHosts...), o.Hosts...) {
		allowed[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	tokenHash := sha256.Sum256([]byte(o.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[hostOnly(r.Host)] {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"error": "this Host is not served here; allow it with engine run --admin-host"})
			return
		}
		if o.Token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			h := sha256.Sum256([]byte(got))
			if !ok || subtle.ConstantTimeCompare(h[:], tokenHash[:]) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="casesync admin"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin endpoints need Authorization: Bearer TOKEN"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostOnly is a Host header's name without its port, lower-cased.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}

// securityHeaders go on every response: the status page loads nothing
// (its one stylesheet is inline), may not be framed, and no response is
// content-sniffed or leaks a Referer.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Shared, never-modified value slices: no allocation per request
		// on the inbox's hot path.
		for k, v := range secHeaders {
			h[k] = v
		}
		next.ServeHTTP(w, r)
	})
}

var secHeaders = http.Header{
	"Content-Security-Policy": {"default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
	"X-Frame-Options":         {"DENY"},
	"X-Content-Type-Options":  {"nosniff"},
	"Referrer-Policy":         {"no-referrer"},
	"Cache-Control":           {"no-store"},
}
