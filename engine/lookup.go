package engine

import (
	"context"
	"fmt"
	"sync"

	"casesync/engine/mapping"
)

// apiResolver answers live lookups with the plan's API lookup requests,
// cached per run.
type apiResolver struct {
	r     *Runner
	cache sync.Map
}

func (a *apiResolver) Resolve(ctx context.Context, name, key string) (any, bool, error) {
	ck := name + "\x00" + key
	if v, ok := a.cache.Load(ck); ok {
		e := v.(cached)
		return e.v, e.ok, nil
	}
	l, ok := a.r.plan.APILookups[name]
	if !ok {
		return nil, false, fmt.Errorf("no API lookup %s", name)
	}
	caller, err := a.r.conns.Caller(l.Connector)
	if err != nil {
		return nil, false, err
	}
	v := &mapping.Vars{Vars: a.r.plan.Vars, Key: key}
	ans, err := caller.Call(ctx, &l.Request, nil, v, CallOptions{Label: "lookup/" + name})
	if err != nil {
		return nil, false, err
	}
	val, err := l.Value.One(ctx, ans.Body, v)
	if err != nil {
		return nil, false, err
	}
	found := val != nil
	a.cache.Store(ck, cached{val, found})
	return val, found, nil
}

type cached struct {
	v  any
	ok bool
}
