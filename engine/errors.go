package engine

import (
	"errors"
	"fmt"
	"time"
)

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
	// Login marks a refused login: whatever its status (401, 403, 400 from
	// a token endpoint) it is the run's failure, never one record's.
	Login bool
	// Connector names the connector whose server answered, when the
	// connector says (a refused login does): a stopped run names it.
	Connector string
	Err       error
	// Body is the decoded error body (nil when it was not JSON), for the
	// spec's classify rules. It may hold record content: it is read in
	// memory and never logged, printed or stored.
	Body any `json:"-"`
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
