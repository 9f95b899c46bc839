package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"casesync/engine/mapping"
)

// ErrUnknownPipeline is returned for a pipeline name the plan lacks.
var ErrUnknownPipeline = errors.New("unknown pipeline")

// runFatal reports whether a failure is the run's rather than the record's:
// credentials refused after the connector's one re-login, or configuration
// no record can fix (a missing secret, a connector that is not there). Such
// a failure stops the run instead of costing every record a retry attempt.
// A 403 on a record's own request stays the record's (servers answer it for
// one record outside the account's scope); a refused login never does.
func runFatal(class Class, err error) bool {
	switch class {
	case ClassConfig:
		return true
	case ClassAuth:
		var re *RemoteError
		return !errors.As(err, &re) || re.Status != 403 || re.Login
	}
	return false
}

// stopped returns the run's fatal failure, if one happened.
func (ru *run) stopped() error {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return ru.fatal
}

// keep drops the outcomes of records that failed with the run's fatal
// failure, so they are neither counted as an attempt nor parked; they are
// read again by the next run, since the cursor does not move. A failure
// that carries a link is kept: its write happened, and the ledger must
// learn the target's id. keep returns the fatal failure, if any.
func (ru *run) keep(outs []Outcome) ([]Outcome, error) {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.fatal == nil {
		return outs, nil
	}
	kept := outs[:0]
	for _, o := range outs {
		if ru.notProcessedLocked(o.RecordKey, o.Action, o.Link) {
			continue
		}
		kept = append(kept, o)
	}
	return kept, ru.fatal
}

// notProcessedLocked reports whether an outcome is one keep drops: a
// failure that was the run's, with no write behind it (no link). outcome
// counts such a record as not processed rather than failed, so the
// run's counts say what keep leaves in the state. ru.mu is held.
func (ru *run) notProcessedLocked(key string, a Action, link *Link) bool {
	return a == ActionFailed && link == nil && ru.fatalKeys[key]
}

// leftUnprocessed counts records a stopped run never reached (the rest of
// a page, the keys after the one that stopped it).
func (ru *run) leftUnprocessed(n int) {
	if n <= 0 {
		return
	}
	ru.mu.Lock()
	ru.counts.NotProcessed += n
	ru.mu.Unlock()
}

// RunStoppedError is a run stopped by a failure that is not one record's:
// credentials refused or configuration broken. The records it hit are not
// charged a retry attempt; they are read again once it is fixed.
type RunStoppedError struct {
	Pipeline string
	Class    Class
	// Connector is the connector that refused, when the failure names one
	// (a refused login does).
	Connector string
	Err       error
	// NotProcessed is the run's Counts.NotProcessed, set when the run
	// ends: the records it left for the next run.
	NotProcessed int
}

func (e *RunStoppedError) Error() string {
	return fmt.Sprintf("%s: run stopped, %s: %s", e.Pipeline, e.Summary(), safeError(e.Err))
}

// Summary says why the run stopped and what became of its records, in
// the words of the run's result line: "credentials refused by
// <connector>; 7 record(s) not processed and the rest not read: the next
// run takes them again (none charged a retry attempt)".
func (e *RunStoppedError) Summary() string {
	what := "configuration problem"
	if e.Class == ClassAuth {
		what = "credentials refused"
		if e.Connector != "" {
			what += " by " + e.Connector
		}
	}
	if e.NotProcessed == 0 {
		return what + " (no record was charged a retry attempt)"
	}
	return fmt.Sprintf("%s; %d record(s) not processed and the rest not read: the next run takes them again (none charged a retry attempt)", what, e.NotProcessed)
}

func (e *RunStoppedError) Unwrap() error { return e.Err }

// NotOKError is a successful (2xx) answer whose body reports a refusal:
// the request's ok program did not yield true (e.g. a 200 whose per-item
// Status is Failed).
type NotOKError struct {
	Method, Path string
	Status       int
	// Reason is what the request's refusal program read from the answer.
	Reason string
}

func (e *NotOKError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s %s: status %d, but the answer reports a failure: %s", e.Method, e.Path, e.Status, e.Reason)
	}
	return fmt.Sprintf("%s %s: status %d, but the answer reports a failure (ok does not hold)", e.Method, e.Path, e.Status)
}

// FailureClass: the remote refused the request, as with a 4xx.
func (e *NotOKError) FailureClass() Class { return ClassPermanent }

// Judge judges a request's successful answer: nil when there is no ok
// program or it holds, else a NotOKError with the reason the refusal
// program reads. Connectors call it with the request they sent.
func (c AnswerCheck) Judge(ctx context.Context, body any, v *mapping.Vars, method, path string, status int) error {
	if c.OK == nil {
		return nil
	}
	if got, err := c.OK.One(ctx, body, v); err == nil && got == true {
		return nil
	}
	e := &NotOKError{Method: method, Path: path, Status: status}
	if c.Refusal != nil {
		if got, err := c.Refusal.One(ctx, body, v); err == nil {
			e.Reason = refusalText(got)
		}
	}
	return e
}

func (ru *run) fail(key, cursorVal, reason string, class Class, err error) Outcome {
	return ru.outcome(ru.failDecision(key, reason, class, err), cursorVal, nil)
}

func (ru *run) failDecision(key, reason string, class Class, err error) Decision {
	if runFatal(class, err) {
		ru.mu.Lock()
		ru.fatalKeys[key] = true
		if ru.fatal == nil {
			stop := &RunStoppedError{Pipeline: ru.p.Name, Class: class, Err: err}
			var re *RemoteError
			if errors.As(err, &re) {
				stop.Connector = re.Connector
			}
			ru.fatal = stop
		}
		ru.mu.Unlock()
	}
	return Decision{Pipeline: ru.p.Name, RecordKey: key, Action: ActionFailed, Reason: reason, Class: class, Error: safeError(err)}
}

// outcome counts a decision, hands it to dry-run, and turns it into an
// outcome for the state.
func (ru *run) outcome(d Decision, cursorVal string, link *Link) Outcome {
	d.Pipeline = ru.p.Name
	d.Error = ru.scrub.clean(d.RecordKey, d.Error)
	ru.mu.Lock()
	// A failure that is the run's is not the record's: the run stopped
	// before it, and keep leaves no outcome of it in the state.
	notProcessed := ru.notProcessedLocked(d.RecordKey, d.Action, link)
	switch {
	case notProcessed:
		ru.counts.NotProcessed++
	case d.Action == ActionSkipped || d.Action == ActionFailed:
		ru.counts.Add(d.Action)
		ru.reasons[d.Reason]++
	default:
		ru.counts.Add(d.Action)
	}
	if d.Action == ActionUnchanged && d.Reason == ReasonBaseline {
		ru.counts.Baselined++
	}
	for _, n := range d.Notes {
		if ru.counts.Notes == nil {
			ru.counts.Notes = map[string]int{}
		}
		ru.counts.Notes[n]++
	}
	ru.mu.Unlock()
	if ru.opts.DryRun != nil {
		ru.opts.DryRun(d)
	}
	o := Outcome{RecordKey: d.RecordKey, Action: d.Action, Reason: d.Reason, Error: d.Error, Class: d.Class,
		TargetID: d.TargetID, Transaction: d.Transaction, PayloadHash: d.PayloadHash, CursorValue: cursorVal, Link: link,
		Unconfirmed: d.Unconfirmed, At: ru.r.clock.Now().UTC()}
	if d.Action == ActionUnchanged && o.PayloadHash == "" {
		// Keep the record's hash current so the next run stays quiet.
		if p, ok := d.Payload.(map[string]any); ok {
			o.PayloadHash = payloadHash(p)
		}
	}
	if d.Action == ActionFailed && !notProcessed {
		// Warn, so alerting on warnings sees a record that needs a person.
		ru.r.log.Warn("record failed", "pipeline", ru.p.Name, "record", d.RecordKey, "reason", d.Reason, "class", string(d.Class), "error", d.Error)
	}
	return o
}

func isNotOK(err error) bool {
	var notOK *NotOKError
	return errors.As(err, &notOK)
}

func reasonFor(err error) string {
	// An error that names its own reason code (a request that cannot be
	// rendered for this record: "request").
	var rc interface{ ReasonCode() string }
	if errors.As(err, &rc) {
		return rc.ReasonCode()
	}
	var re *RemoteError
	if errors.As(err, &re) {
		if re.Status != 0 {
			return fmt.Sprintf("http_%d", re.Status)
		}
		if re.MaybeApplied {
			return "write_unconfirmed"
		}
		return "transport"
	}
	var notOK *NotOKError
	if errors.As(err, &notOK) {
		return "not_ok"
	}
	if errors.Is(err, ErrEmptyKey) {
		return "empty_key"
	}
	return "write_error"
}

// safeError renders an error for logs and state: our errors carry no
// record content by construction.
func safeError(err error) string {
	if err == nil {
		return ""
	}
	return Clip(err.Error(), 500)
}

// maxRefusal bounds the remote's reason kept with a failure.
const maxRefusal = 300

// refusalText renders a refusal program's result: a string as it is,
// anything else as JSON, clipped to maxRefusal bytes.
func refusalText(v any) string {
	s, ok := v.(string)
	if !ok && v != nil {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	return Clip(strings.TrimSpace(s), maxRefusal)
}

// SortedReasons returns reason codes with counts, most frequent first.
func SortedReasons(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if m[out[i]] != m[out[j]] {
			return m[out[i]] > m[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

// countWrite counts a write the target accepted.
func (ru *run) countWrite(connector string) {
	ru.mu.Lock()
	if ru.writes == nil {
		ru.writes = map[string]int{}
	}
	ru.writes[connector]++
	ru.mu.Unlock()
}

// Answer reads a write's successful answer: the ok check first (a
// NotOKError when it refuses), then the target's id and transaction.
func (w UpsertWrite) Answer(ctx context.Context, body any, v *mapping.Vars, method, path string, status int) (Written, error) {
	if err := w.Check.Judge(ctx, body, v, method, path, status); err != nil {
		return Written{}, err
	}
	out := Written{Answer: body}
	if w.ID != nil {
		if idV, err := w.ID.One(ctx, body, v); err == nil {
			out.ID = ScalarString(idV)
		}
	}
	if w.Transaction != nil {
		if tv, err := w.Transaction.One(ctx, body, v); err == nil {
			out.Transaction = tv
		}
	}
	return out, nil
}
