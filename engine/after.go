package engine

import (
	"context"
	"fmt"

	"casesync/engine/mapping"
)

// afterSteps is the after stage: the follow-up calls of a written item
// (an acknowledgement, a submission and its status polls).
type afterSteps struct {
	ru *run
}

// item runs the after-steps of a written item.
func (as *afterSteps) item(ctx context.Context, d *Decision, v *mapping.Vars) error {
	ru := as.ru
	v.Outcome = outcomeValue(d.Action, d.Reason, d.Class)
	for _, a := range ru.p.After {
		if len(a.On) > 0 && !a.On["written"] {
			continue
		}
		if a.When != nil {
			env := mapping.ExprEnvFor(v.Record, v)
			env.Action = string(d.Action)
			ok, err := a.When.Bool(env)
			if err != nil {
				return fmt.Errorf("after %s when: %w", a.Name, err)
			}
			if !ok {
				continue
			}
		}
		if err := as.step(ctx, &a, v); err != nil {
			if a.OnError == "ignore" {
				ru.r.log.Warn("after-step failed; ignored as declared", "pipeline", ru.p.Name, "step", a.Name, "error", ru.scrub.clean(d.RecordKey, safeError(err)))
				continue
			}
			return fmt.Errorf("after %s: %w", a.Name, err)
		}
	}
	return nil
}

func (as *afterSteps) step(ctx context.Context, a *After, v *mapping.Vars) error {
	ru := as.ru
	caller, err := ru.r.conns.Caller(a.Connector)
	if err != nil {
		return err
	}
	ans, err := caller.Call(ctx, &a.Request, v.Payload, v, CallOptions{Label: ru.p.Name + "/after/" + a.Name, Write: true, Check: &a.Check})
	if err != nil {
		return err
	}
	if a.Poll == nil {
		ru.countWrite(a.Connector)
	}
	if a.Transaction != nil {
		tv, err := a.Transaction.One(ctx, ans.Body, v)
		if err != nil || ScalarString(tv) == "" {
			return fmt.Errorf("no transaction id in the response")
		}
		v.Transaction = tv
	}
	if a.Poll != nil {
		return as.poll(ctx, caller, a, v)
	}
	return nil
}

// PollFailedError is an asynchronous job the remote side reports failed.
type PollFailedError struct{ State string }

func (e *PollFailedError) Error() string { return "remote job ended " + e.State }

// FailureClass: a failed remote job is retried on a later run.
func (e *PollFailedError) FailureClass() Class { return ClassRetryable }

// poll asks for an asynchronous job's status until it is done, failed or
// out of time.
func (as *afterSteps) poll(ctx context.Context, caller Caller, a *After, v *mapping.Vars) error {
	ru := as.ru
	po := a.Poll
	deadline := ru.r.clock.Now().Add(po.Timeout)
	for attempt := 0; ; attempt++ {
		ans, err := caller.Call(ctx, &po.Request, v.Payload, v, CallOptions{Label: ru.p.Name + "/poll/" + a.Name})
		if err != nil {
			return err
		}
		sv, err := po.Status.One(ctx, ans.Body, v)
		if err != nil {
			return fmt.Errorf("poll status: %w", err)
		}
		state := ScalarString(sv)
		switch {
		case po.Done[state]:
			return nil
		case po.Failed[state]:
			return &PollFailedError{State: state}
		}
		// Unknown states count as still pending.
		if !ru.r.clock.Now().Before(deadline) {
			return &RemoteError{Class: ClassRetryable, Msg: "poll " + a.Name + " timed out in state " + state}
		}
		if err := ru.r.Sleep(ctx, po.Interval); err != nil {
			return err
		}
	}
}

// outcomeValue is $outcome (and expr's outcome): how the item ended.
func outcomeValue(a Action, reason string, class Class) map[string]any {
	return map[string]any{"action": string(a), "reason": reason, "class": string(class)}
}

// declaredFor reports whether any after-step runs after action.
func (as *afterSteps) declaredFor(action Action) bool {
	for _, a := range as.ru.p.After {
		if a.On[string(action)] {
			return true
		}
	}
	return false
}

// outcomes runs the after-steps declared for items that were not written
// (on: unchanged, skipped, failed), with $outcome telling them how the item
// ended: a flow writes "failed" or "not_found" back to the system that
// asked. A step that fails is recorded with the item, which then fails
// with reason after_<step> (a skipped item) or keeps its reason with the
// step's error added (a failed one); the failure steps never run for
// their own failure, so a broken write-back cannot loop.
func (as *afterSteps) outcomes(ctx context.Context, rec map[string]any, delivery any, outs []Outcome) []Outcome {
	ru := as.ru
	if ru.opts.DryRun != nil || len(ru.p.After) == 0 {
		return outs
	}
	for i := range outs {
		o := &outs[i]
		switch o.Action {
		case ActionUnchanged, ActionSkipped, ActionFailed:
		default:
			continue
		}
		if !as.declaredFor(o.Action) || o.Reason == "waits_for_item" || o.Reason == "after" {
			// An item that waits for an earlier one has not been tried;
			// one whose own after-step failed has had its steps: a step
			// never runs twice for one item in one run.
			continue
		}
		ru.mu.Lock()
		fatal := ru.fatalKeys[o.RecordKey]
		ru.mu.Unlock()
		if fatal {
			// Credentials refused or configuration broken: the record is
			// read again once that is fixed; nothing to report yet.
			continue
		}
		v := *ru.vars
		v.Record = rec
		v.Delivery = delivery
		v.TargetID = nilIfEmpty(o.TargetID)
		v.Outcome = outcomeValue(o.Action, o.Reason, o.Class)
		if err := as.after(ctx, o.Action, &v); err != nil {
			as.failed(o, err)
		}
	}
	return outs
}

// after runs the steps declared for action.
func (as *afterSteps) after(ctx context.Context, action Action, v *mapping.Vars) error {
	ru := as.ru
	for _, a := range ru.p.After {
		if !a.On[string(action)] {
			continue
		}
		if a.When != nil {
			env := mapping.ExprEnvFor(v.Record, v)
			env.Action = string(action)
			ok, err := a.When.Bool(env)
			if err != nil {
				return fmt.Errorf("after %s when: %w", a.Name, err)
			}
			if !ok {
				continue
			}
		}
		if err := as.step(ctx, &a, v); err != nil {
			if a.OnError == "ignore" {
				ru.r.log.Warn("after-step failed; ignored as declared", "pipeline", ru.p.Name, "step", a.Name, "error", safeError(err))
				continue
			}
			return fmt.Errorf("after %s: %w", a.Name, err)
		}
	}
	return nil
}

// failed records a failed after-step on an item that was not written.
func (as *afterSteps) failed(o *Outcome, err error) {
	ru := as.ru
	ru.r.log.Warn("after-step of an unwritten item failed", "pipeline", ru.p.Name, "record", o.RecordKey, "outcome", string(o.Action), "reason", o.Reason, "error", safeError(err))
	msg := safeError(err)
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if o.Action == ActionFailed {
		if o.Error != "" {
			msg = o.Error + "; then " + msg
		}
		o.Error = Clip(msg, 500)
		return
	}
	switch o.Action {
	case ActionSkipped:
		ru.counts.Skipped--
		ru.reasons[o.Reason]--
		if ru.reasons[o.Reason] <= 0 {
			delete(ru.reasons, o.Reason)
		}
	case ActionUnchanged:
		ru.counts.Unchanged--
	}
	ru.counts.Failed++
	o.Action, o.Class, o.Error = ActionFailed, ClassOf(err), Clip(msg, 500)
	o.Reason = "after_failed"
	ru.reasons[o.Reason]++
	o.SourceVersion = ""
}
