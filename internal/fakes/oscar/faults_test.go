package oscar_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"casesync/internal/fakes/faults"
	"casesync/internal/fakes/oscar"
)

// rawUpsert posts a referral and returns the transport error or the read
// error, for faults that break the connection.
func rawUpsert(ctx context.Context, c *conn, org map[string]any) (*http.Response, []byte, error) {
	b, _ := json.Marshal(map[string]any{"organization": org})
	req, _ := http.NewRequestWithContext(ctx, "POST", c.base+pathUpsert, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range c.hdr {
		req.Header[k] = v
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, body, err
}

func TestServer_Faults(t *testing.T) {
	tests := []struct {
		name string
		cfg  faults.Config
		// check gets the answer; written says whether the store saw the write.
		check   func(t *testing.T, res *http.Response, body []byte, err error)
		written bool
	}{
		{"500 is an HTML page", faults.Config{Rate500: 1}, func(t *testing.T, res *http.Response, body []byte, err error) {
			if err != nil || res.StatusCode != 500 || !bytes.HasPrefix(body, []byte("<!DOCTYPE html>")) {
				t.Errorf("got %v %s, want a 500 HTML page", err, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		}, false},
		{"429 with Retry-After", faults.Config{Rate429: 1, RetryAfter: 7}, func(t *testing.T, res *http.Response, body []byte, err error) {
			if err != nil || res.StatusCode != 429 || res.Header.Get("Retry-After") != "7" {
				t.Errorf("got %v %v, want 429 with Retry-After 7", err, res)
			}
		}, false},
		{"connection dropped before the headers", faults.Config{RateDrop: 1}, func(t *testing.T, res *http.Response, body []byte, err error) {
			if err == nil {
				t.Errorf("got %d, want a transport error", res.StatusCode)
			}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c := startAuthed(t, oscar.Options{})
			s.Faults().Set(tc.cfg)
			res, body, err := rawUpsert(t.Context(), c, newReferral(extA, "cif", "Kinship care"))
			tc.check(t, res, body, err)
			if got := len(s.Referrals()) == 1; got != tc.written {
				t.Errorf("written = %v, want %v", got, tc.written)
			}
		})
	}
}

// Faults given in Options are in force from the first request.
func TestServer_FaultsOption(t *testing.T) {
	s, c := start(t, oscar.Options{Faults: faults.Config{Rate500: 1}})
	r := c.do("POST", pathSignIn, map[string]string{"email": oscar.DefaultEmail, "password": oscar.DefaultPassword})
	if r.code != 500 || !r.isHTML() {
		t.Errorf("got %d, want the injected 500 page", r.code)
	}
	if s.Counters().Injected500.Load() != 1 {
		t.Errorf("Injected500 = %d", s.Counters().Injected500.Load())
	}
}

// Latency holds the request before the fake's handler runs. A GET is used
// because the server notices a client hanging up only once the request
// body has been read, which an injected delay never does.
func TestServer_FaultLatency(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{})
	s.Faults().Set(faults.Config{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+pathClients, nil)
	for k, v := range c.hdr {
		req.Header[k] = v
	}
	res, err := c.http.Do(req)
	if err == nil {
		res.Body.Close()
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want the client's deadline", err)
	}
	if n := s.Counters().Requests()["GET "+pathClients]; n != 1 {
		t.Errorf("requests seen = %d, want 1", n)
	}
}

// A body cut mid-way: the write happened, the answer is lost. The client
// must not take the missing answer for a failed write.
func TestServer_FaultCutBody(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{})
	s.CutNextBodies(1)
	res, _, err := rawUpsert(t.Context(), c, newReferral(extA, "cif", "Kinship care"))
	if res == nil || res.StatusCode != 200 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, %v; want 200 headers then an unexpected EOF", res, err)
	}
	if len(s.Referrals()) != 1 {
		t.Error("the write behind the cut answer is missing")
	}
	if r := c.upsert(newReferral(extB, "cif", "Kinship care")); r.code != 200 {
		t.Errorf("next request: %d", r.code)
	}
}

// The header set can be invalidated from the server side at any moment.
func TestServer_FaultHeadersInvalidated(t *testing.T) {
	s, c := startAuthed(t, oscar.Options{})
	if r := c.upsert(newReferral(extA, "cif", "Kinship care")); r.code != 200 {
		t.Fatalf("before: %d", r.code)
	}
	s.ExpireTokens()
	if r := c.upsert(newReferral(extB, "cif", "Kinship care")); r.code != 401 {
		t.Errorf("after ExpireTokens: %d, want 401", r.code)
	}
	c.signIn()
	if r := c.upsert(newReferral(extB, "cif", "Kinship care")); r.code != 200 {
		t.Errorf("after a new sign-in: %d", r.code)
	}
}
