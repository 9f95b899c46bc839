package engine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Caller reaches one remote system; connectors/rest implements it from a
// Connector plan. Lifecycle:
//  1. construct with rest.New(plan connector, secrets, options);
//  2. use Do and List from any number of goroutines (auth, retries, the rate
//     limit and the concurrency cap are shared by every caller);
//  3. whoever constructed it calls Close.
type Caller interface {
	// Do sends one request. Transport failures, 5xx and 429 are retried
	// inside Do when req.Idempotent; otherwise an error with MaybeApplied
	// set tells the runner to re-check by key before trying again.
	Do(ctx context.Context, req *Call) (*Response, error)
	// List streams a listing page by page: fn sees each page's records as
	// soon as that page arrives, and the listing never sits in memory.
	List(ctx context.Context, req *Call, fn func(*Page) error) error
	Close() error
}

// Call is one concrete request: templates rendered, secrets not resolved
// (the connector resolves Text values itself so they never pass through
// the runner's logs).
type Call struct {
	Method string
	// Path is relative to the connector's base URL, or an absolute URL.
	Path   string
	Query  url.Values
	Header map[string]Text
	// Body is a JSON-shaped value; nil sends no body.
	Body any
	// Pagination for List; nil means the connector's default, and a
	// connector without one lists a single page.
	Pagination *Pagination
	// Records selects the records array in each page; nil means the whole
	// body is a single record (or, if it is an array, the records).
	Records RecordsFunc
	// Idempotent requests may be repeated freely after an unknown outcome.
	Idempotent bool
	// Label names the caller in logs, e.g. "cases_to_oscar/upsert".
	Label string
}

// RecordsFunc extracts the records from a decoded response body.
type RecordsFunc func(ctx context.Context, body any) ([]any, error)

// Response is a decoded response.
type Response struct {
	Status int
	Header http.Header
	Body   any // decoded JSON; nil when empty
}

// Page is one page of a listing.
type Page struct {
	Number  int // 1-based
	Records []any
	// Total is the server's announced total, or -1 when it gives none.
	Total int
}

// Class sorts failures by what the runner should do about them.
type Class string

// The failure classes.
const (
	ClassRetryable Class = "retryable" // try again later: 5xx, 429, timeouts, resets
	ClassPermanent Class = "permanent" // the target refused: 4xx, validation
	ClassAuth      Class = "auth"      // credentials refused after one re-login
	ClassConfig    Class = "config"    // the spec or the environment is wrong
	ClassData      Class = "data"      // the record cannot be mapped
)

// RemoteError is a failed call. Msg is the server's own error text with
// record content and secrets removed; Status is 0 for transport failures.
type RemoteError struct {
	Class        Class
	Status       int
	Method, Path string
	Msg          string
	RetryAfter   time.Duration
	// MaybeApplied means the request may have reached the server (a
	// timeout, a reset or a 5xx after sending a non-idempotent write).
	MaybeApplied bool
	Err          error
}

func (e *RemoteError) Error() string {
	s := fmt.Sprintf("%s %s", e.Method, e.Path)
	if e.Status != 0 {
		s += fmt.Sprintf(": status %d", e.Status)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil && e.Msg == "" {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *RemoteError) Unwrap() error { return e.Err }

// ClassOf returns err's class; errors without one are retryable, since an
// unknown failure must never drop a record.
func ClassOf(err error) Class {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Class
	}
	var ce interface{ FailureClass() Class }
	if errors.As(err, &ce) {
		return ce.FailureClass()
	}
	var ms *MissingSecretError
	if errors.As(err, &ms) {
		return ClassConfig
	}
	return ClassRetryable
}

// Clock gives the time; tests pass a fixed one.
type Clock interface{ Now() time.Time }

// SystemClock is the wall clock in UTC.
type SystemClock struct{}

// Now returns the current UTC time.
func (SystemClock) Now() time.Time { return time.Now().UTC() }
