package daemon

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"casesync/engine"
)

// inbox is a pipeline's webhook inbox with its secrets resolved.
type inbox struct {
	pipeline *engine.Pipeline
	// secretHash is the SHA-256 of the shared secret; hasSecret is false
	// when the inbox checks only signatures.
	secretHash [32]byte
	hasSecret  bool
	// hmacKey is the signing key; nil when the inbox checks no signature.
	hmacKey []byte
}

// Why a delivery was refused, for the log (never with what was presented).
const (
	authNoSecret   = "no shared secret presented"
	authBadSecret  = "wrong shared secret"
	authNoSig      = "no signature or timestamp header"
	authBadTime    = "timestamp is not a Unix time in seconds"
	authStale      = "timestamp outside the replay window"
	authBadSig     = "signature does not match"
	authBadSigForm = "signature is not well-formed"
)

// checkSecret checks the shared secret in the declared header, or as the
// basic-auth password. Comparing hashes keeps the comparison constant-time
// whatever the lengths.
func (in *inbox) checkSecret(r *http.Request) string {
	if !in.hasSecret {
		return ""
	}
	ok, presented := 0, false
	if v := r.Header.Get(in.pipeline.Inbox.Header); v != "" {
		presented = true
		h := sha256.Sum256([]byte(v))
		ok |= subtle.ConstantTimeCompare(h[:], in.secretHash[:])
	}
	if _, pass, has := r.BasicAuth(); has {
		presented = true
		h := sha256.Sum256([]byte(pass))
		ok |= subtle.ConstantTimeCompare(h[:], in.secretHash[:])
	}
	switch {
	case ok == 1:
		return ""
	case !presented:
		return authNoSecret
	default:
		return authBadSecret
	}
}

// checkSignature verifies HMAC-SHA256("<timestamp>.<raw body>") and that
// the timestamp is within the replay window of now. A replay inside the
// window carries the same body, which the inbox already answers as a
// duplicate without processing it again.
func (in *inbox) checkSignature(r *http.Request, body []byte, now time.Time) string {
	h := in.pipeline.Inbox.HMAC
	if h == nil {
		return ""
	}
	sig, ts := r.Header.Get(h.SignatureHeader), r.Header.Get(h.TimestampHeader)
	if sig == "" || ts == "" {
		return authNoSig
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return authBadTime
	}
	if d := now.Sub(time.Unix(sec, 0)); d > h.Window || d < -h.Window {
		return authStale
	}
	sig, ok := strings.CutPrefix(sig, h.Prefix)
	if !ok {
		return authBadSigForm
	}
	var got []byte
	if h.Base64 {
		got, err = base64.StdEncoding.DecodeString(sig)
	} else {
		got, err = hex.DecodeString(sig)
	}
	if err != nil {
		return authBadSigForm
	}
	mac := hmac.New(sha256.New, in.hmacKey)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return authBadSig
	}
	return ""
}

// jsonContent reports whether a Content-Type names JSON: application/json
// or a application/*+json type, with any parameters.
func jsonContent(ct string) bool {
	if ct == "application/json" || strings.HasPrefix(ct, "application/json;") {
		return true // the common case, without parsing
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// authThrottle slows down whoever keeps failing authentication: each client
// address may fail authFailBurst times, then once per authFailEvery; past
// that every request of theirs is answered 429 unread until the allowance
// refills. Successful deliveries cost nothing. Behind a reverse proxy the
// address is the proxy's (see SECURITY.md).
type authThrottle struct {
	mu      sync.Mutex
	clients map[string]*throttled
}

type throttled struct {
	lim    *rate.Limiter
	logged bool // the "throttling" line was logged for this episode
}

const (
	authFailBurst   = 10
	authFailEvery   = 6 * time.Second
	throttleClients = 4096 // addresses tracked at once
)

func newAuthThrottle() *authThrottle {
	return &authThrottle{clients: map[string]*throttled{}}
}

// clientAddr is the request's peer address without its port.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// blocked reports whether addr has used up its failures; first is true
// the first time in an episode, so the daemon logs it once.
func (t *authThrottle) blocked(addr string, now time.Time) (blocked, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.clients[addr]
	if !ok {
		return false, false
	}
	if c.lim.TokensAt(now) >= 1 {
		c.logged = false
		return false, false
	}
	first = !c.logged
	c.logged = true
	return true, first
}

// failed charges addr one failure.
func (t *authThrottle) failed(addr string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.clients[addr]
	if !ok {
		if len(t.clients) >= throttleClients {
			t.prune(now)
		}
		c = &throttled{lim: rate.NewLimiter(rate.Every(authFailEvery), authFailBurst)}
		t.clients[addr] = c
	}
	c.lim.AllowN(now, 1)
}

// prune forgets addresses whose allowance has refilled; if all are still
// throttled (a flood from many addresses), it starts afresh rather than
// grow without bound.
func (t *authThrottle) prune(now time.Time) {
	for a, c := range t.clients {
		if c.lim.TokensAt(now) >= authFailBurst {
			delete(t.clients, a)
		}
	}
	if len(t.clients) >= throttleClients {
		clear(t.clients)
	}
}
