package mapping

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limits bound every jq and expr evaluation, so a program that spins
// (last(repeat(1))) or builds a huge value ([range(1e9)]) fails its record
// instead of holding the pipeline or the process's memory.
type Limits struct {
	// Timeout is how long one evaluation may run.
	Timeout time.Duration
	// MaxBytes bounds the size of what one evaluation yields, estimated
	// as the bytes of its strings and keys plus 8 per other value.
	MaxBytes int
}

// Default limits, when a spec sets none.
const (
	DefaultEvalTimeout  = 2 * time.Second
	DefaultEvalMaxBytes = 8 << 20
)

// Reason codes of an evaluation cut short.
const (
	ReasonEvalTimeout  = "eval_timeout"
	ReasonEvalTooLarge = "eval_too_large"
)

// EvalError is an evaluation stopped by the limits. The record fails with
// Reason; the run goes on.
type EvalError struct {
	Reason string
	Lang   string // jq or expr
	Limit  string // "2s", "8388608 bytes"
}

func (e *EvalError) Error() string {
	if e.Reason == ReasonEvalTimeout {
		return fmt.Sprintf("%s: evaluation ran past its %s limit (limits.eval_timeout)", e.Lang, e.Limit)
	}
	return fmt.Sprintf("%s: evaluation yielded more than %s (limits.eval_max_bytes)", e.Lang, e.Limit)
}

// SetLimits sets the limits of every program compiled with r from now on;
// zero fields keep the defaults.
func (r *Registry) SetLimits(l Limits) {
	if l.Timeout > 0 {
		r.limits.Timeout = l.Timeout
	}
	if l.MaxBytes > 0 {
		r.limits.MaxBytes = l.MaxBytes
	}
}

// Limits returns the limits programs compiled with r get.
func (r *Registry) Limits() Limits { return r.limitsOf() }

func (r *Registry) limitsOf() Limits {
	if r == nil {
		return Limits{Timeout: DefaultEvalTimeout, MaxBytes: DefaultEvalMaxBytes}
	}
	return r.limits
}

// Bounded gives ctx one evaluation deadline for several programs run
// together (a fan-out's each and its item keys), which then share it
// instead of each starting its own; cancel releases it.
func (l Limits) Bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return l.bounded(ctx)
}

// bounded gives ctx the evaluation deadline, unless a deadline at least
// as near is already set (a whole mapping's evaluations share one).
func (l Limits) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	t := l.timeout()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= t {
		return ctx, func() {}
	}
	return context.WithDeadlineCause(ctx, time.Now().Add(t), errEvalDeadline)
}

// errEvalDeadline is the cause of a deadline the limits set: an evaluation
// that ends on it timed out, whereas one that ends on a caller's own
// deadline or cancellation did not. A cause rather than a context value:
// gojq checks ctx.Done() before every instruction, and each wrapping
// context adds a call to that check.
var errEvalDeadline = errors.New("evaluation deadline")

// timeout and maxBytes read the zero Limits as the defaults.
func (l Limits) timeout() time.Duration {
	if l.Timeout <= 0 {
		return DefaultEvalTimeout
	}
	return l.Timeout
}

func (l Limits) maxBytes() int {
	if l.MaxBytes <= 0 {
		return DefaultEvalMaxBytes
	}
	return l.MaxBytes
}

// timedOut reports an evaluation error caused by the limits' deadline
// (not by the caller cancelling, nor by a deadline of its own).
func timedOut(ctx context.Context, err error) bool {
	if !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return context.Cause(ctx) == errEvalDeadline
}

// tooLarge reports whether v is past max bytes, walking it only until the
// budget is spent.
func tooLarge(v any, max int) bool {
	left := max
	var walk func(any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case string:
			left -= len(x)
		case map[string]any:
			left -= 8
			for k, e := range x {
				left -= len(k)
				if left < 0 || walk(e) {
					return true
				}
			}
		case []any:
			left -= 8
			for _, e := range x {
				if left < 0 || walk(e) {
					return true
				}
			}
		default:
			left -= 8
		}
		return left < 0
	}
	return walk(v)
}
