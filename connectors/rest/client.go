package rest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"casesync/engine"
	"casesync/internal/redact"
)

// Defaults for a plan that leaves a field at its zero value (plans built by
// engine/spec always carry the schema's defaults; hand-built ones may not).
const (
	defaultTimeout     = 30 * time.Second
	defaultBackoff     = 500 * time.Millisecond
	defaultMaxBackoff  = 30 * time.Second
	defaultMaxAttempts = 5
	defaultConcurrency = 4
	// maxRetryAfter bounds how long Do sleeps on a server's Retry-After;
	// beyond it the error carries RetryAfter and the runner reschedules.
	maxRetryAfter = 5 * time.Minute
)

// Options are the collaborators a Client takes from its owner.
type Options struct {
	// Logger receives one debug line per request and one info line per
	// retry, all redacted; nil discards.
	Logger *slog.Logger
	// HTTP sends requests; nil uses a client with its own transport. Its
	// redirect policy is replaced by one that refuses to leave the host.
	HTTP *http.Client
	// Clock gives the time for token expiry and Retry-After dates; nil is
	// the system clock.
	Clock engine.Clock
	// Rand is the jitter source, seeded by the caller; the Client takes
	// ownership (do not share it between clients). nil seeds from the time.
	Rand *rand.Rand
	// Sleep waits between retries; tests replace it. nil sleeps on a timer
	// and returns early with ctx's error.
	Sleep func(ctx context.Context, d time.Duration) error
	// Redactor masks secrets in the Client's logs and errors; the Client
	// adds every secret it resolves and every token it obtains. Sharing
	// one (as Pool does) masks every secret of a deployment everywhere.
	// nil gives the Client its own.
	Redactor *redact.Redactor
	// Observe, when set, is told how long each call took, retries
	// included: call "do" for a single request, "page" for each page of a
	// listing (the daemon's latency metric).
	Observe func(connector, call string, d time.Duration)
}

// Client is a connector: it speaks HTTP for one engine.Connector, and Pool
// hands it to the runner as the engine's ports (ports.go). Lifecycle:
//  1. New resolves the connector's secrets, compiles nothing new (the plan
//     holds compiled programs) and validates its auth and pagination kinds;
//  2. Do and List may be called from any number of goroutines, which share
//     one login, one rate limit and one concurrency cap;
//  3. its owner (usually a Pool) calls Close, which is safe to call twice.
type Client struct {
	name      string
	conn      *engine.Connector
	secrets   engine.Secrets
	red       *redact.Redactor
	log       *slog.Logger
	http      *http.Client
	transport *http.Transport // non-nil when the Client owns it
	clock     engine.Clock
	sleep     func(ctx context.Context, d time.Duration) error
	observe   func(connector, call string, d time.Duration)

	randMu sync.Mutex
	rand   *rand.Rand

	auth     authenticator
	baseHost string      // host of base_url
	headers  http.Header // connector headers, resolved
	limiter  *rate.Limiter
	sem      chan struct{}
	normal   engine.NormalizeSpec
	timeout  time.Duration
	backoff  time.Duration
	maxBack  time.Duration
	attempts int
	// maxResponse bounds a response body (max_response_bytes).
	maxResponse int64

	stats  counters
	closed atomic.Bool
}

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("connector closed")

// New builds a Client for c. Secrets named by the connector (auth, headers,
// login bodies) are resolved now, so a missing one fails here with an
// *engine.MissingSecretError.
func New(c *engine.Connector, secrets engine.Secrets, opts Options) (*Client, error) {
	if c == nil {
		return nil, errors.New("rest: nil connector")
	}
	cl := &Client{
		name:        c.Name,
		conn:        c,
		secrets:     secrets,
		red:         opts.Redactor,
		clock:       opts.Clock,
		sleep:       opts.Sleep,
		observe:     opts.Observe,
		rand:        opts.Rand,
		normal:      c.Spec.Normalize,
		timeout:     orDuration(c.Timeout, defaultTimeout),
		backoff:     orDuration(c.Backoff, defaultBackoff),
		maxBack:     orDuration(c.MaxBackoff, defaultMaxBackoff),
		attempts:    c.Spec.Retry.MaxAttempts,
		maxResponse: c.Spec.MaxResponseBytes,
	}
	if cl.maxResponse <= 0 {
		cl.maxResponse = defaultMaxResponse
	}
	if cl.attempts <= 0 {
		cl.attempts = defaultMaxAttempts
	}
	if cl.red == nil {
		cl.red = redact.New()
	}
	if cl.clock == nil {
		cl.clock = engine.SystemClock{}
	}
	if cl.sleep == nil {
		cl.sleep = sleepCtx
	}
	if cl.rand == nil {
		now := uint64(time.Now().UnixNano())
		cl.rand = rand.New(rand.NewPCG(now, now>>32))
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cl.log = slog.New(redact.Handler(logger.Handler(), cl.red)).With("connector", c.Name)

	base, err := url.Parse(c.Spec.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") {
		return nil, fmt.Errorf("connector %s: base_url is not an http(s) URL", c.Name)
	}
	cl.baseHost = base.Host
	if opts.HTTP != nil {
		hc := *opts.HTTP
		cl.http = &hc
	} else {
		tc, err := tlsConfig(c, secrets)
		if err != nil {
			return nil, fmt.Errorf("connector %s: tls: %w", c.Name, err)
		}
		cl.transport = http.DefaultTransport.(*http.Transport).Clone()
		cl.transport.TLSClientConfig = tc
		cl.http = &http.Client{Transport: cl.transport}
	}
	cl.http.CheckRedirect = sameHostRedirects

	hdr, err := cl.resolveHeaders(c.Spec.Headers)
	if err != nil {
		return nil, fmt.Errorf("connector %s: headers: %w", c.Name, err)
	}
	cl.headers = hdr

	conc := c.Spec.Concurrency
	if conc <= 0 {
		conc = defaultConcurrency
	}
	cl.sem = make(chan struct{}, conc)
	if cl.transport != nil {
		// Keep a connection for each request that may be in flight:
		// net/http's default keeps two per host, so with a concurrency of
		// four the others were closed after their answer and dialled
		// again (a socket, a connect and two new goroutines each time).
		cl.transport.MaxIdleConnsPerHost = max(conc, http.DefaultMaxIdleConnsPerHost)
	}
	if rl := c.Spec.RateLimit; rl != nil && rl.PerSecond > 0 {
		cl.limiter = rate.NewLimiter(rate.Limit(rl.PerSecond), max(rl.Burst, 1))
	}

	kind := c.Auth.Kind
	if kind == "" {
		if kind, err = kindOf(c.Auth.Spec); err != nil {
			return nil, fmt.Errorf("connector %s: auth: %w", c.Name, err)
		}
		if kind == "" {
			kind = "none" // the schema's default
		}
	}
	newAuth, ok := authKinds[kind]
	if !ok {
		return nil, fmt.Errorf("connector %s: unknown auth kind %q", c.Name, kind)
	}
	if cl.auth, err = newAuth(cl, &c.Auth); err != nil {
		return nil, fmt.Errorf("connector %s: auth %s: %w", c.Name, kind, err)
	}
	if c.Pagination != nil {
		if _, err := pagerFor(c.Pagination); err != nil {
			return nil, fmt.Errorf("connector %s: pagination: %w", c.Name, err)
		}
	}
	return cl, nil
}

// Name returns the connector's name.
func (c *Client) Name() string { return c.name }

// Close releases idle connections. Calls after Close fail with ErrClosed;
// Close itself is safe to call twice.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	return nil
}

// Do sends one request and decodes its JSON response. Transport failures,
// 5xx and 429 are retried inside Do when call.Idempotent; otherwise an
// error with MaybeApplied set tells the runner to re-check by key before
// trying again.
func (c *Client) Do(ctx context.Context, call *Call) (*Response, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	o, err := c.outbound(call)
	if err != nil {
		return nil, err
	}
	if c.observe != nil {
		defer func(t time.Time) { c.observe(c.name, "do", time.Since(t)) }(time.Now())
	}
	return c.send(ctx, o)
}

// resolveHeaders resolves Text header values, teaching the redactor every
// secret it reads.
func (c *Client) resolveHeaders(in map[string]engine.Text) (http.Header, error) {
	h := http.Header{}
	for name, t := range in {
		v, err := c.resolve(t)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", name, err)
		}
		h.Set(name, v)
	}
	return h, nil
}

// resolve reads t, adding a secret's value to the redactor.
func (c *Client) resolve(t engine.Text) (string, error) {
	v, err := t.Resolve(c.secrets)
	if err != nil {
		return "", err
	}
	if t.Secret != "" {
		c.red.Add(v)
	}
	return v, nil
}

// sameHostRedirects follows at most ten redirects and never to another
// host: our auth headers (API keys in custom headers, which net/http does
// not strip) must not travel with it.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return http.ErrUseLastResponse
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func orDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
