package engine

import (
	"context"
	"fmt"
	"sync"

	"casesync/engine/mapping"
)

// enricher is the enrich stage: each enrich step's request is sent for a
// record and its answer attached to the record under the step's name.
type enricher struct {
	ru    *run
	cache sync.Map // rendered request → *cachedAnswer, for steps declared cache
}

// cachedAnswer is one cached answer. Records that need it while it is being
// fetched wait for that one request instead of sending their own: a
// listing that changes what the target holds (a system that acts on
// queued work when it is listed) must not be read again in the middle of
// other records' writes. A failed fetch is not kept, so a later record asks again.
type cachedAnswer struct {
	done chan struct{}
	val  any
	err  error
	// pick is the answer's index when the step declares pick.
	pick *pickIndex
}

// record runs the enrich steps on a selected record. ok is false when the
// record ends here, with out its outcome.
func (en *enricher) record(ctx context.Context, s *selected) (out Outcome, ok bool) {
	ru := en.ru
	for i := range ru.p.Enrich {
		e := &ru.p.Enrich[i]
		if e.When != nil {
			run, err := e.When.Bool(mapping.ExprEnvFor(s.rec, ru.vars))
			if err != nil {
				return ru.fail(s.key, s.cursor, "enrich_"+e.Name, ClassData, fmt.Errorf("enrich %s when: %w", e.Name, err)), false
			}
			if !run {
				continue
			}
		}
		val, err := en.step(ctx, e, s.rec)
		if rule, ok := classify(ctx, e.Classify, err, ru.vars); ok {
			if rule.Skip {
				return ru.outcome(Decision{RecordKey: s.key, Action: ActionSkipped, Reason: rule.Reason}, s.cursor, nil), false
			}
			return ru.fail(s.key, s.cursor, rule.Reason, rule.Class, fmt.Errorf("enrich %s: %w", e.Name, err)), false
		}
		if err != nil {
			switch e.OnError {
			case "skip":
				return ru.outcome(Decision{RecordKey: s.key, Action: ActionSkipped, Reason: "enrich_" + e.Name}, s.cursor, nil), false
			case "null":
				val = nil
			default:
				return ru.fail(s.key, s.cursor, "enrich_"+e.Name, ClassOf(err), fmt.Errorf("enrich %s: %w", e.Name, err)), false
			}
		}
		s.rec[e.As] = val
	}
	return Outcome{}, true
}

// step performs one enrich request for a record.
func (en *enricher) step(ctx context.Context, e *Enrich, rec map[string]any) (any, error) {
	ru := en.ru
	caller, err := ru.r.conns.Caller(e.Connector)
	if err != nil {
		return nil, err
	}
	label := ru.p.Name + "/enrich/" + e.Name
	var cacheKey string
	if e.Cache {
		pv, err := caller.Preview(ctx, &e.Request, rec, ru.vars)
		if err != nil {
			return nil, err
		}
		b, _ := MarshalJSON(pv)
		cacheKey = e.Name + string(b)
		c := &cachedAnswer{done: make(chan struct{})}
		if v, loaded := en.cache.LoadOrStore(cacheKey, c); loaded {
			prev := v.(*cachedAnswer)
			select {
			case <-prev.done:
				return prev.answer(ctx, e, rec, ru.vars)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		defer func() { close(c.done) }()
		out, err := en.fetch(ctx, e, rec, caller, label)
		if err == nil && len(e.Pick) > 0 {
			c.pick, err = buildPick(ctx, e, out, ru.vars)
		}
		c.val, c.err = out, err
		if err != nil {
			en.cache.Delete(cacheKey)
		}
		return c.answer(ctx, e, rec, ru.vars)
	}
	return en.fetch(ctx, e, rec, caller, label)
}

// answer is what a cached answer gives one record: the whole answer, or
// the record's items when the step declares pick.
func (c *cachedAnswer) answer(ctx context.Context, e *Enrich, rec map[string]any, vars *mapping.Vars) (any, error) {
	if c.err != nil || c.pick == nil {
		return c.val, c.err
	}
	return c.pick.pick(ctx, e, rec, vars)
}

// fetch sends one enrich step's request (every page of it when declared
// all_pages) and returns its records or body.
func (en *enricher) fetch(ctx context.Context, e *Enrich, rec map[string]any, caller Caller, label string) (any, error) {
	ru := en.ru
	var err error
	var out any
	if e.AllPages {
		all := []any{}
		err = caller.CallPages(ctx, &e.Request, rec, ru.vars, label, func(pg *Page) error {
			all = append(all, pg.Records...)
			return nil
		})
		out = all
	} else {
		var ans Answer
		ans, err = caller.Call(ctx, &e.Request, rec, ru.vars, CallOptions{Label: label})
		out = ans.Body
		if ans.Records != nil {
			out = ans.Records
		}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
