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
	for _, a := range ru.p.After {
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
				ru.r.log.Warn("after-step failed; ignored as declared", "pipeline", ru.p.Name, "step", a.Name, "error", safeError(err))
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
