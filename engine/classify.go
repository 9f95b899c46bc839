package engine

import (
	"context"
	"errors"
	"slices"

	"casesync/engine/mapping"
)

// classify finds the first rule that matches a failed request: its status
// among the rule's (any when none are listed) and its error body
// satisfying the rule's body program. A failure with no answer (a timeout,
// a refused connection) matches only a rule that lists no status and no
// body.
func classify(ctx context.Context, rules []Classify, err error, v *mapping.Vars) (*Classify, bool) {
	if len(rules) == 0 || err == nil {
		return nil, false
	}
	var re *RemoteError
	if !errors.As(err, &re) {
		return nil, false
	}
	for i := range rules {
		r := &rules[i]
		if len(r.Status) > 0 && !slices.Contains(r.Status, re.Status) {
			continue
		}
		if r.Body != nil {
			if re.Body == nil {
				continue
			}
			ok, jerr := r.Body.One(ctx, re.Body, v)
			if jerr != nil || ok != true {
				continue
			}
		}
		if re.Status == 0 && (len(r.Status) > 0 || r.Body != nil) {
			continue
		}
		return r, true
	}
	return nil, false
}

// ClassifiedError is a failure a classify rule named: the reason and class
// come from the spec, the message from the request.
type ClassifiedError struct {
	Reason string
	Class  Class
	Err    error
}

func (e *ClassifiedError) Error() string { return e.Err.Error() }
func (e *ClassifiedError) Unwrap() error { return e.Err }

// FailureClass is the rule's class.
func (e *ClassifiedError) FailureClass() Class { return e.Class }
