package engine

import (
	"context"
	"fmt"
	"sync"

	"casesync/engine/mapping"
)

// apiResolver answers live lookups with the plan's API lookup requests,
// cached per run, and table lookups from their table, loaded once per run.
type apiResolver struct {
	r     *Runner
	cache sync.Map

	mu     sync.Mutex
	tables map[string]*loadedTable
}

// loadedTable is a table lookup's rows for one run, or why they could not
// be loaded (every key of the run then fails with it).
type loadedTable struct {
	once sync.Once
	rows map[string]any
	err  error
}

// table answers key from lookup l's table, loading it on first use.
func (a *apiResolver) table(ctx context.Context, l *APILookup, key string) (any, bool, error) {
	a.mu.Lock()
	if a.tables == nil {
		a.tables = map[string]*loadedTable{}
	}
	t, ok := a.tables[l.Name]
	if !ok {
		t = &loadedTable{}
		a.tables[l.Name] = t
	}
	a.mu.Unlock()
	t.once.Do(func() {
		tl, ok := a.r.conns.(TableLoader)
		if !ok {
			t.err = fmt.Errorf("connector %s cannot load a table", l.Connector)
			return
		}
		t.rows, t.err = tl.LoadTable(ctx, l)
	})
	if t.err != nil {
		return nil, false, t.err
	}
	v, ok := t.rows[key]
	return v, ok, nil
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
	if l.Table {
		return a.table(ctx, l, key)
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
