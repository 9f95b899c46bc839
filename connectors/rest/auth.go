package rest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"casesync/engine"
)

// authenticator puts credentials on requests. One exists per Client and is
// shared by all its goroutines.
type authenticator interface {
	// apply adds credentials to h, logging in first when there are none
	// or they are about to expire. gen identifies the credentials used.
	apply(ctx context.Context, h http.Header) (gen uint64, err error)
	// relogin is called after a 401 on credentials gen: it drops them and
	// logs in again, unless another request already replaced them. It
	// reports false when the kind has nothing to renew (static secrets).
	relogin(ctx context.Context, gen uint64) (bool, error)
	// observe sees the headers of every successful response to a request
	// made with credentials gen, to pick up rotated values.
	observe(h http.Header, gen uint64)
}

// authKinds maps the schema's auth discriminator to a constructor. Each
// constructor resolves its secrets and validates its spec eagerly.
var authKinds = map[string]func(c *Client, a *engine.Auth) (authenticator, error){
	"none":        newNoneAuth,
	"basic":       newBasicAuth,
	"header":      newHeaderAuth,
	"token_login": newTokenLoginAuth,
	"oauth2":      newOAuth2Auth,
}

// staticAuth sends fixed headers; a 401 cannot be cured by logging in.
type staticAuth struct{ h http.Header }

func (s *staticAuth) apply(_ context.Context, h http.Header) (uint64, error) {
	copyHeader(h, s.h)
	return 0, nil
}

// copyHeader sets src's values on dst without sharing slices: credentials
// are read by every request at once, and an Add on a shared slice would
// write into them.
func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = slices.Clone(v)
	}
}

func (s *staticAuth) relogin(context.Context, uint64) (bool, error) { return false, nil }
func (s *staticAuth) observe(http.Header, uint64)                   {}

// creds are the headers a login produced.
type creds struct {
	header    http.Header
	refreshAt time.Time // zero: valid until refused
	gen       uint64
}

// loginCall is one login in flight; concurrent callers wait for it.
type loginCall struct {
	done chan struct{}
	c    *creds
	err  error
}

// session holds the credentials of a login-based kind and makes sure that
// concurrent requests share one login: the first caller logs in while the
// others wait for its result (a failed login is reported to all of them,
// not retried by each, so bad credentials never cause a login storm).
type session struct {
	c        *Client
	login    func(ctx context.Context) (http.Header, time.Duration, error)
	sendBack []string // response headers that replace the login's values

	mu     sync.Mutex
	cur    *creds
	gen    uint64
	flight *loginCall
	// refused is a login the server turned down (ClassAuth). It is not
	// tried again by this Client: the secrets cannot change under it (a
	// reload builds a new one), and servers lock an account after a few
	// failed logins.
	refused error
}

func (s *session) apply(ctx context.Context, h http.Header) (uint64, error) {
	cr, err := s.get(ctx)
	if err != nil {
		return 0, err
	}
	copyHeader(h, cr.header)
	return cr.gen, nil
}

// get returns valid credentials, logging in if needed.
func (s *session) get(ctx context.Context) (*creds, error) {
	for {
		s.mu.Lock()
		if err := s.refused; err != nil {
			s.mu.Unlock()
			return nil, err
		}
		if cur := s.cur; cur != nil && (cur.refreshAt.IsZero() || s.c.clock.Now().Before(cur.refreshAt)) {
			s.mu.Unlock()
			return cur, nil
		}
		if call := s.flight; call != nil {
			s.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			// The leader's own context ended its login; ours is alive,
			// so try again rather than inherit its cancellation.
			if call.err != nil && isContextErr(call.err) && ctx.Err() == nil {
				continue
			}
			return call.c, call.err
		}
		call := &loginCall{done: make(chan struct{})}
		s.flight = call
		s.mu.Unlock()

		call.c, call.err = s.doLogin(ctx)

		s.mu.Lock()
		if call.err == nil {
			s.cur = call.c
		} else if engine.ClassOf(call.err) == engine.ClassAuth {
			s.refused = call.err
		}
		s.flight = nil
		s.mu.Unlock()
		close(call.done)
		return call.c, call.err
	}
}

func (s *session) doLogin(ctx context.Context) (*creds, error) {
	s.c.stats.logins.Add(1)
	h, ttl, err := s.login(ctx)
	if err != nil {
		// A refused login is an auth failure whatever status it came
		// with (a token endpoint answers bad credentials with 400).
		var re *engine.RemoteError
		if errors.As(err, &re) && (re.Class == engine.ClassPermanent || re.Class == engine.ClassAuth) {
			cp := *re
			cp.Class, cp.Login, cp.Connector = engine.ClassAuth, true, s.c.name
			err = &cp
		}
		return nil, fmt.Errorf("log in to %s: %w", s.c.name, err)
	}
	for _, vs := range h {
		for _, v := range vs {
			s.c.red.Add(v)
			// "Bearer xyz": the token alone is the secret.
			if _, tok, ok := strings.Cut(v, " "); ok {
				s.c.red.Add(tok)
			}
		}
	}
	s.mu.Lock()
	s.gen++
	cr := &creds{header: h, gen: s.gen}
	s.mu.Unlock()
	if ttl > 0 {
		// Log in again ahead of expiry: a tenth of the lifetime, at most
		// a minute, so a request never leaves with a token about to lapse.
		cr.refreshAt = s.c.clock.Now().Add(ttl - min(ttl/10, time.Minute))
	}
	return cr, nil
}

func (s *session) relogin(ctx context.Context, gen uint64) (bool, error) {
	s.mu.Lock()
	if s.cur != nil && s.cur.gen == gen {
		s.cur = nil
	}
	s.mu.Unlock()
	_, err := s.get(ctx)
	return true, err
}

// observe replaces send-back header values when a response carries new
// ones (servers that rotate tokens on every request).
func (s *session) observe(h http.Header, gen uint64) {
	if len(s.sendBack) == 0 {
		return
	}
	var changed http.Header
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur
	if cur == nil || cur.gen != gen {
		return // a login or rotation already replaced these credentials
	}
	for _, name := range s.sendBack {
		v := h.Get(name)
		if v == "" || v == cur.header.Get(name) {
			continue
		}
		if changed == nil {
			changed = cur.header.Clone()
		}
		changed.Set(name, v)
		s.c.red.Add(v)
	}
	if changed == nil {
		return
	}
	s.gen++
	s.cur = &creds{header: changed, refreshAt: cur.refreshAt, gen: s.gen}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// kindOf names the one variant set in a kind struct (engine.AuthSpec,
// engine.PaginationSpec) by its JSON name; "" when none is set.
func kindOf(spec any) (string, error) {
	v := reflect.ValueOf(spec)
	var set []string
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			set = append(set, jsonName(v.Type().Field(i)))
		}
	}
	switch len(set) {
	case 0:
		return "", nil
	case 1:
		return set[0], nil
	}
	return "", fmt.Errorf("more than one kind set: %s", strings.Join(set, ", "))
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}
