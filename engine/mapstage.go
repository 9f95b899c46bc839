package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"casesync/engine/mapping"
)

// item maps, upserts and runs after-steps for one item.
// mapper is the map stage: an item's input becomes the payload the target
// is sent, through the pipeline's compiled mapping.
type mapper struct {
	ru *run
}

// item maps one item. ok is false when the item ends here, with out its
// outcome (a skip, a lookup miss, a mapping error).
func (mp *mapper) item(ctx context.Context, s *selected, it item, v *mapping.Vars) (payload map[string]any, out Outcome, ok bool) {
	payload, err := mp.ru.p.Map.Apply(ctx, it.input, v)
	if err != nil {
		return nil, mp.ru.mapFailure(it.key, s.cursor, err), false
	}
	return payload, Outcome{}, true
}

func (ru *run) mapFailure(key, cursorVal string, err error) Outcome {
	var skip *mapping.SkipError
	if errors.As(err, &skip) {
		return ru.outcome(Decision{RecordKey: key, Action: ActionSkipped, Reason: skip.Reason}, cursorVal, nil)
	}
	var miss *mapping.MissError
	if errors.As(err, &miss) {
		d := ru.failDecision(key, "lookup_miss_"+miss.Lookup, ClassData, redactMiss(err, miss))
		if ru.opts.DryRun != nil {
			d.MissLookup, d.MissKey = miss.Lookup, miss.Key
		}
		return ru.outcome(d, cursorVal, nil)
	}
	var le *mapping.LookupError
	if errors.As(err, &le) {
		return ru.fail(key, cursorVal, "lookup_error_"+le.Lookup, ClassOf(le.Err), err)
	}
	var fe *mapping.FailError
	if errors.As(err, &fe) {
		return ru.fail(key, cursorVal, fe.Reason, ClassData, err)
	}
	return ru.fail(key, cursorVal, evalReason(err, "map_error"), ClassData, err)
}

// evalReason is eval_timeout or eval_too_large for a program the limits
// stopped, else fallback: the record fails with it and the run goes on.
func evalReason(err error, fallback string) string {
	var ee *mapping.EvalError
	if errors.As(err, &ee) {
		return ee.Reason
	}
	return fallback
}

// redactMiss keeps the lookup's name and the key's shape but not the key:
// keys such as a national id are personal data.
func redactMiss(err error, miss *mapping.MissError) error {
	msg := err.Error()
	msg = strings.Replace(msg, fmt.Sprintf("%q", miss.Key), fmt.Sprintf("(%d characters)", len(miss.Key)), 1)
	return errors.New(msg)
}
