package daemon_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hmacInbox checks signatures only, with the sender's own header names,
// a "sha256=" prefix and a 5-minute replay window.
const hmacInbox = `{path: "/hooks/primero", key: ".data.record_id", max_bytes: 4096,
		hmac: {secret: {secret: "INBOX_SECRET"}, signature_header: "X-Hub-Signature-256", timestamp_header: "X-Hub-Timestamp", prefix: "sha256=", window: "5m"},
		fetch: {path: "/api/v2/cases/{$key}", records: "[.data]"}}`

// hmacBase64Inbox checks a base64 signature and a shared secret.
const hmacBase64Inbox = `{path: "/hooks/primero", key: ".data.record_id", max_bytes: 4096, secret: {secret: "INBOX_SECRET"}, header: "x-api-key",
		hmac: {secret: {secret: "INBOX_SECRET"}, encoding: "base64"},
		fetch: {path: "/api/v2/cases/{$key}", records: "[.data]"}}`

func sign(key, ts, body string, b64 bool) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(ts + "." + body))
	if b64 {
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// lockedBuffer is a log sink the daemon's goroutines may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInbox_HMACSignatures: a delivery signed over "<timestamp>.<raw body>"
// with the declared header names is accepted; a wrong key, a changed body,
// a stale or future timestamp, a missing header or a malformed digest is
// refused with 401, and the refusal is logged with its reason but never
// with what was presented.
func TestInbox_HMACSignatures(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, envOptions{dep: deployment{inbox: hmacInbox}, noRun: true,
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	key := mustSecret(e)
	ids := referredCases(e)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	stale := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	future := strconv.FormatInt(time.Now().Add(6*time.Minute).Unix(), 10)
	body := func(i int) string { return fmt.Sprintf(`{"data": {"record_id": %q}}`, ids[i]) }
	hdr := func(sig, ts string) map[string]string {
		return map[string]string{"X-Hub-Signature-256": sig, "X-Hub-Timestamp": ts}
	}
	wrongKey := "sha256=" + sign("not-the-key", now, body(0), false)
	tests := []struct {
		name string
		body string
		hdr  map[string]string
		want int
	}{
		{"signed", body(0), hdr("sha256="+sign(key, now, body(0), false), now), http.StatusAccepted},
		{"signed, upper-case hex", body(1), hdr("sha256="+strings.ToUpper(sign(key, now, body(1), false)), now), http.StatusAccepted},
		{"wrong key", body(2), hdr(wrongKey, now), http.StatusUnauthorized},
		{"body changed after signing", body(2), hdr("sha256="+sign(key, now, body(3), false), now), http.StatusUnauthorized},
		{"timestamp changed after signing", body(2), hdr("sha256="+sign(key, now, body(2), false), stale), http.StatusUnauthorized},
		{"stale", body(2), hdr("sha256="+sign(key, stale, body(2), false), stale), http.StatusUnauthorized},
		{"from the future", body(2), hdr("sha256="+sign(key, future, body(2), false), future), http.StatusUnauthorized},
		{"no prefix", body(2), hdr(sign(key, now, body(2), false), now), http.StatusUnauthorized},
		{"not hex", body(2), hdr("sha256=zz", now), http.StatusUnauthorized},
		{"no timestamp", body(2), map[string]string{"X-Hub-Signature-256": "sha256=" + sign(key, now, body(2), false)}, http.StatusUnauthorized},
		{"nothing", body(2), nil, http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.post("/hooks/primero", tc.body, tc.hdr).StatusCode; got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
	if n := e.pending(); n != 2 {
		t.Errorf("%d deliveries stored, want the 2 signed ones", n)
	}
	out := logs.String()
	for _, reason := range []string{"signature does not match", "timestamp outside the replay window", "no signature or timestamp header", "signature is not well-formed"} {
		if !strings.Contains(out, reason) {
			t.Errorf("log lacks the reason %q:\n%s", reason, out)
		}
	}
	if strings.Contains(out, strings.TrimPrefix(wrongKey, "sha256=")) || strings.Contains(out, key) {
		t.Errorf("log shows a presented signature or the key:\n%s", out)
	}
}

// TestInbox_SecretAndBase64Signature: with both checks declared, both
// must pass.
func TestInbox_SecretAndBase64Signature(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{inbox: hmacBase64Inbox}, noRun: true})
	key := mustSecret(e)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	b := fmt.Sprintf(`{"data": {"record_id": %q}}`, referredCases(e)[0])
	sig := map[string]string{"X-Casesync-Signature": sign(key, now, b, true), "X-Casesync-Timestamp": now}
	both := map[string]string{"x-api-key": key}
	for k, v := range sig {
		both[k] = v
	}
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"signature only", sig, http.StatusUnauthorized},
		{"secret only", map[string]string{"x-api-key": key}, http.StatusUnauthorized},
		{"both", both, http.StatusAccepted},
	} {
		if got := e.post("/hooks/primero", b, tc.hdr).StatusCode; got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestInbox_JSONContentTypesOnly: a form post or text body is refused with
// 415 before it is read; JSON media types, with parameters or a +json
// suffix, are accepted.
func TestInbox_JSONContentTypesOnly(t *testing.T) {
	e := newEnv(t, envOptions{dep: deployment{inbox: fetchInbox}, noRun: true})
	ids := referredCases(e)
	for i, tc := range []struct {
		ct   string
		want int
	}{
		{"application/json", http.StatusAccepted},
		{"application/json; charset=utf-8", http.StatusAccepted},
		{"application/cloudevents+json", http.StatusAccepted},
		{"text/plain", http.StatusUnsupportedMediaType},
		{"application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"", http.StatusUnsupportedMediaType},
		{"application/jsonx", http.StatusUnsupportedMediaType},
	} {
		hdr := secretHeader(e)
		hdr["Content-Type"] = tc.ct
		b := fmt.Sprintf(`{"data": {"record_id": %q}}`, ids[i])
		if got := e.post("/hooks/primero", b, hdr).StatusCode; got != tc.want {
			t.Errorf("Content-Type %q: status %d, want %d", tc.ct, got, tc.want)
		}
	}
}

// TestInbox_FailedAuthIsThrottled: after ten failed authentications a
// client is answered 429 for a while, even with the right secret, and the
// throttling is logged once; the wrong values never reach the log.
func TestInbox_FailedAuthIsThrottled(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, envOptions{dep: deployment{inbox: fetchInbox}, noRun: true,
		log: slog.New(slog.NewTextHandler(&logs, nil))})
	ok := fmt.Sprintf(`{"data": {"record_id": %q}}`, referredCases(e)[0])
	for i := range 10 {
		guess := fmt.Sprintf("guess-%03d-canary", i)
		if got := e.post("/hooks/primero", ok, map[string]string{"x-api-key": guess}).StatusCode; got != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i, got)
		}
	}
	for i := range 3 {
		resp := e.post("/hooks/primero", ok, secretHeader(e))
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("request %d after 10 failures: status %d (Retry-After %q), want 429 with Retry-After", i, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	out := logs.String()
	if n := strings.Count(out, "authentication failed"); n != 10 {
		t.Errorf("%d failures logged, want 10:\n%s", n, out)
	}
	if n := strings.Count(out, "throttling a client"); n != 1 {
		t.Errorf("throttling logged %d times, want once:\n%s", n, out)
	}
	if strings.Contains(out, "canary") || strings.Contains(out, mustSecret(e)) {
		t.Errorf("the log shows a presented value:\n%s", out)
	}
	if !containsLine(e.metrics(), `casesync_inbox_deliveries_total{pipeline="cases_to_oscar",result="throttled"} 3`) {
		t.Error("metrics do not count the throttled requests")
	}
}
