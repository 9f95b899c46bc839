package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"casesync/engine"
	"casesync/internal/version"
)

// userAgent names casesync and its build on every outbound request.
var userAgent = version.Get().UserAgent()

// maxErrorBody bounds how much of an error response is read for its message.
const maxErrorBody = 64 << 10

type action int

const (
	actDone    action = iota // success, or a failure not to repeat here
	actRetry                 // repeat after a wait, while attempts remain
	actRelogin               // 401: log in again once, then repeat
)

// outcome is what one attempt came to.
type outcome struct {
	resp          *Response
	err           error
	action        action
	retryAfter    time.Duration
	hasRetryAfter bool
	gen           uint64 // credentials the attempt used, for a re-login
}

// queryCredential prefixes the header entries an authenticator uses to ask
// for a query parameter (token_login.token_query). The NUL byte cannot
// start a real header name, so no response or spec header collides.
const queryCredential = "\x00query:"

// takeQueryCredentials removes the query credentials from h and returns
// them as query values.
func takeQueryCredentials(h http.Header) url.Values {
	var q url.Values
	for k, vs := range h {
		if name, ok := strings.CutPrefix(k, queryCredential); ok {
			if q == nil {
				q = url.Values{}
			}
			q[name] = vs
			delete(h, k)
		}
	}
	return q
}

// send runs the retry loop around attempt. Every failure it returns is an
// *engine.RemoteError (or wraps one), with secrets masked.
func (c *Client) send(ctx context.Context, o *outbound) (*Response, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	payload, ctype, err := c.encode(o)
	if err != nil {
		class := engine.ClassData
		var ms *engine.MissingSecretError
		if errors.As(err, &ms) {
			class = engine.ClassConfig
		}
		return nil, &engine.RemoteError{Class: class, Method: o.method, Path: c.path(o), Err: c.safeErr(err)}
	}
	relogged := false
	failures := 0
	for n := 1; ; n++ {
		out := c.attempt(ctx, o, payload, ctype, n)
		switch out.action {
		case actDone:
			return out.resp, out.err
		case actRelogin:
			// Exactly one re-login per call: a second 401 means the fresh
			// credentials are refused too, which no retry will fix.
			if relogged || o.login {
				return nil, out.err
			}
			relogged = true
			ok, err := c.auth.relogin(ctx, out.gen)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, out.err
			}
		case actRetry:
			failures++
			if failures >= c.attempts {
				return nil, out.err
			}
			wait := out.retryAfter
			if !out.hasRetryAfter {
				wait = c.jitter(failures)
			}
			c.stats.retries.Add(1)
			c.log.LogAttrs(ctx, slog.LevelInfo, "retrying request",
				slog.String("label", o.label), slog.String("method", o.method), slog.String("path", c.path(o)),
				slog.Int("attempt", n), slog.Duration("wait", wait), slog.String("error", out.err.Error()))
			if err := c.sleep(ctx, wait); err != nil {
				return nil, c.gaveUp(ctx, o, out.err, err)
			}
		}
	}
}

// gaveUp reports a wait cut short by the caller's context, keeping the
// last failure's MaybeApplied.
func (c *Client) gaveUp(ctx context.Context, o *outbound, last, err error) error {
	re := &engine.RemoteError{Class: engine.ClassRetryable, Method: o.method, Path: c.path(o), Err: c.safeErr(err)}
	var prev *engine.RemoteError
	if errors.As(last, &prev) {
		re.MaybeApplied = prev.MaybeApplied
		re.Status = prev.Status
	}
	return re
}

// attempt sends the request once.
func (c *Client) attempt(ctx context.Context, o *outbound, payload []byte, ctype string, n int) outcome {
	hdr := http.Header{}
	if !o.login || o.url.Host == c.baseHost {
		// A login on another host (an identity provider) does not get the
		// API's own headers, which may hold a key meant for the API only.
		hdr = c.headers.Clone()
	}
	maps.Copy(hdr, o.header)
	if hdr.Get("Accept") == "" {
		hdr.Set("Accept", "application/json")
	}
	if hdr.Get("User-Agent") == "" {
		// Lets the remote's admins find our requests in their logs, and
		// which build sent them; a spec's own header wins.
		hdr.Set("User-Agent", userAgent)
	}
	if ctype != "" {
		hdr.Set("Content-Type", ctype)
	}
	var gen uint64
	if !o.login {
		g, err := c.auth.apply(ctx, hdr)
		if err != nil {
			// Nothing of this request was sent: whatever the login call
			// may have done, this write certainly did not happen.
			var re *engine.RemoteError
			if errors.As(err, &re) && re.MaybeApplied {
				cp := *re
				cp.MaybeApplied = false
				err = &cp
			}
			return outcome{action: actDone, err: err}
		}
		gen = g
	}
	u := o.url
	credQuery := takeQueryCredentials(hdr)
	if (o.form != nil && o.method == http.MethodGet) || len(credQuery) > 0 {
		u = &url.URL{}
		*u = *o.url
		q := u.Query()
		if o.method == http.MethodGet {
			maps.Copy(q, o.form)
		}
		maps.Copy(q, credQuery)
		u.RawQuery = q.Encode()
	}

	release, err := c.acquire(ctx)
	if err != nil {
		// Nothing was sent: waiting for a slot or a token was cut short.
		return outcome{action: actDone, err: &engine.RemoteError{Class: engine.ClassRetryable, Method: o.method, Path: c.path(o), Err: c.safeErr(err)}}
	}
	defer release()

	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, o.method, u.String(), body)
	if err != nil {
		return outcome{action: actDone, err: &engine.RemoteError{Class: engine.ClassConfig, Method: o.method, Path: c.path(o), Err: c.safeErr(err)}}
	}
	req.Header = hdr
	c.stats.requests.Add(1)
	c.stats.bytesOut.Add(int64(len(payload)))

	start := time.Now()
	resp, err := c.http.Do(req)
	var out outcome
	status, in := 0, int64(0)
	if err != nil {
		out = c.transportFailure(ctx, o, err)
	} else {
		cr := &countingReader{r: resp.Body}
		out = c.response(o, resp, cr, gen)
		resp.Body.Close()
		status, in = resp.StatusCode, cr.n
		c.stats.bytesIn.Add(cr.n)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		// Built only when wanted: the path is rendered again for it.
		attrs := []slog.Attr{
			slog.String("label", o.label), slog.String("method", o.method), slog.String("path", c.path(o)),
			slog.Int("status", status), slog.Duration("duration", time.Since(start)), slog.Int("attempt", n),
			slog.Int64("bytes_in", in), slog.Int("bytes_out", len(payload)),
		}
		if out.err != nil {
			attrs = append(attrs, slog.String("error", out.err.Error()))
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "request", attrs...)
	}
	return out
}

// acquire takes a concurrency slot, then a rate token. The slot comes
// first so that requests queued for a slot do not bank tokens and then
// leave in a burst.
func (c *Client) acquire(ctx context.Context) (func(), error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			<-c.sem
			return nil, err
		}
	}
	return func() { <-c.sem }, nil
}

// response classifies a response and decodes a successful one.
func (c *Client) response(o *outbound, resp *http.Response, body io.Reader, gen uint64) outcome {
	st := resp.StatusCode
	var v any
	var err error
	if st >= 200 && st < 300 {
		if !o.login {
			c.auth.observe(resp.Header, gen)
		}
		err = c.tooLarge(resp.ContentLength)
		if err == nil {
			v, err = decodeJSON(&cappedReader{r: body, left: c.maxResponse})
		}
		if err == nil {
			return outcome{resp: &Response{Status: st, Header: resp.Header, Body: v}}
		}
	}
	// Only a failure names the request (its path rendered again and
	// redacted): a few µs an answer, not spent on the good ones.
	re := &engine.RemoteError{Status: st, Method: o.method, Path: c.path(o)}
	if st >= 200 && st < 300 {
		switch {
		case errors.Is(err, errNotJSON):
			re.Class, re.Msg = engine.ClassPermanent, "non-JSON response"
			re.MaybeApplied = !o.idempotent
			return outcome{action: actDone, err: re}
		case errors.Is(err, errTooLarge):
			// Asking again brings the same body: a permanent failure the
			// spec fixes (smaller pages, or a larger limit).
			re.Class = engine.ClassPermanent
			re.Msg = fmt.Sprintf("response larger than connectors.%s.max_response_bytes (%d bytes): request smaller pages or raise the limit", c.name, c.maxResponse)
			re.MaybeApplied = !o.idempotent
			return outcome{action: actDone, err: re}
		}
		// The body broke off: the server did answer, so a write was applied.
		re.Class, re.Err = engine.ClassRetryable, c.safeErr(err)
		if o.idempotent {
			return outcome{action: actRetry, err: re}
		}
		re.MaybeApplied = true
		return outcome{action: actDone, err: re}
	}

	raw, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	// Remote text may quote the record (a name, a date of birth): only what
	// ScrubRemote keeps is stored, logged or shown (issue 16 item 7).
	re.Msg = c.red.String(engine.ScrubRemote(serverMessage(st, resp.Header.Get("Content-Type"), raw)))
	if v, err := decodeJSON(bytes.NewReader(raw)); err == nil {
		re.Body = v
	}
	if st >= 300 && st < 400 {
		// sameHostRedirects stopped here; the Location is not quoted, as
		// it may carry a signed query.
		re.Msg = "redirect to another host not followed"
	}
	wait, has := retryAfter(resp.Header, c.clock.Now())
	switch {
	case st == http.StatusUnauthorized:
		re.Class = engine.ClassAuth
		return outcome{action: actRelogin, err: re, gen: gen}
	case st == http.StatusForbidden:
		re.Class = engine.ClassAuth
		return outcome{action: actDone, err: re}
	case st == http.StatusTooManyRequests, st == http.StatusRequestTimeout,
		st == http.StatusServiceUnavailable:
		// The server refused the request before acting on it (503 says it
		// cannot handle requests now; 502 and 504 make no such promise),
		// so even a write may be repeated.
		if st == http.StatusTooManyRequests {
			c.stats.throttled.Add(1)
		}
		re.Class, re.RetryAfter = engine.ClassRetryable, wait
		if has && wait > maxRetryAfter {
			return outcome{action: actDone, err: re}
		}
		return outcome{action: actRetry, err: re, retryAfter: wait, hasRetryAfter: has}
	case st >= 500:
		re.Class = engine.ClassRetryable
		if o.idempotent {
			return outcome{action: actRetry, err: re}
		}
		re.MaybeApplied = true
		return outcome{action: actDone, err: re}
	}
	re.Class = engine.ClassPermanent
	return outcome{action: actDone, err: re}
}

// transportFailure classifies an error from the transport: no response.
func (c *Client) transportFailure(ctx context.Context, o *outbound, err error) outcome {
	re := &engine.RemoteError{Class: engine.ClassRetryable, Method: o.method, Path: c.path(o), Err: c.safeErr(err)}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		re.Msg = fmt.Sprintf("no response within %s", c.timeout)
	}
	switch {
	case ctx.Err() != nil:
		// The caller gave up mid-request: a write in flight may have landed.
		re.Err = c.safeErr(ctx.Err())
		re.MaybeApplied = !o.idempotent && !notSent(err)
		return outcome{action: actDone, err: re}
	case notSent(err), o.idempotent:
		return outcome{action: actRetry, err: re}
	}
	re.MaybeApplied = true
	return outcome{action: actDone, err: re}
}

// notSent reports failures that certainly happened before the request
// reached the server: no connection was made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// jitter is the full-jitter exponential backoff for the n-th failure:
// uniform in [0, min(max_backoff, backoff*2^(n-1))].
func (c *Client) jitter(n int) time.Duration {
	ceil := c.maxBack
	if n-1 < 32 {
		if d := c.backoff << (n - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	c.randMu.Lock()
	defer c.randMu.Unlock()
	return time.Duration(c.rand.Int64N(int64(ceil) + 1))
}

// retryAfter reads Retry-After as seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

var errNotJSON = errors.New("non-JSON response")

// errTooLarge is a response body past the connector's max_response_bytes.
var errTooLarge = errors.New("response too large")

// defaultMaxResponse bounds a response body when the spec sets no limit:
// one page of even a generous API stays far below it, and a runaway one (a
// 1 GB page took the engine to 3.1 GB) fails instead of exhausting memory.
const defaultMaxResponse = 64 << 20

// tooLarge refuses a body whose declared length is already past the limit,
// before any of it is read.
func (c *Client) tooLarge(contentLength int64) error {
	if contentLength > c.maxResponse {
		return errTooLarge
	}
	return nil
}

// cappedReader fails with errTooLarge once more than left bytes arrive.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, errTooLarge
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// safeError carries a redacted message and answers errors.Is for the
// original (context.DeadlineExceeded, syscall.ECONNRESET). It has no Unwrap:
// the original's own message may quote a secret (net/http quotes an
// invalid header value), and errors.As would hand it out.
type safeError struct {
	msg string
	err error
}

func (e *safeError) Error() string        { return e.msg }
func (e *safeError) Is(target error) bool { return errors.Is(e.err, target) }

// safeErr drops *url.Error's URL (it may carry a secret query value) and
// masks known secrets in what remains.
func (c *Client) safeErr(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &safeError{msg: c.red.String(err.Error()), err: err}
}
