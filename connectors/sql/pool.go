package sql

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"sort"
	"sync"

	"casesync/engine"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Pool holds one database handle per sql connector of a plan, opened on
// first use: engine check and dry-run never connect. Lifecycle: NewPool,
// then any number of goroutines use the ports, then Close.
type Pool struct {
	plan    *engine.Plan
	secrets engine.Secrets

	mu  sync.Mutex
	dbs map[string]*conn
}

var (
	_ engine.Connectors  = (*Pool)(nil)
	_ engine.TableLoader = (*Pool)(nil)
	_ engine.BatchTarget = (*target)(nil)
)

// conn is one connector's database, opened once.
type conn struct {
	once sync.Once
	d    dialect
	db   *stdsql.DB
	err  error
}

// NewPool returns the sql connectors of plan.
func NewPool(plan *engine.Plan, secrets engine.Secrets) *Pool {
	return &Pool{plan: plan, secrets: secrets, dbs: map[string]*conn{}}
}

// Names lists the plan's sql connectors.
func Names(plan *engine.Plan) []string {
	var out []string
	for name, c := range plan.Connectors {
		if c.Kind == "sql" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// open returns the named connector's database, connecting on first use.
func (p *Pool) open(ctx context.Context, name string) (*conn, error) {
	p.mu.Lock()
	c, ok := p.dbs[name]
	if !ok {
		c = &conn{}
		p.dbs[name] = c
	}
	p.mu.Unlock()
	c.once.Do(func() { c.d, c.db, c.err = p.connect(ctx, name) })
	return c, c.err
}

func (p *Pool) connect(ctx context.Context, name string) (dialect, *stdsql.DB, error) {
	cn, ok := p.plan.Connectors[name]
	if !ok || cn.Spec.SQL == nil {
		return dialect{}, nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("no sql connector %q", name)}
	}
	dsn, err := cn.Spec.SQL.DSN.Resolve(p.secrets)
	if err != nil {
		return dialect{}, nil, err
	}
	d, err := dialectFor(dsn)
	if err != nil {
		return dialect{}, nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("connector %s: %v", name, err)}
	}
	db, err := stdsql.Open(d.driver, d.dsn)
	if err != nil {
		return dialect{}, nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("connector %s: open: %v", name, err)}
	}
	n := max(cn.Spec.Concurrency, 1)
	if d.name == "sqlite" {
		n = 1 // one writer; WAL lets readers in beside it
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return dialect{}, nil, dbError(name, "connect", err)
	}
	return d, db, nil
}

// Close closes every database opened.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, c := range p.dbs {
		if c.db != nil {
			errs = append(errs, c.db.Close())
		}
	}
	p.dbs = map[string]*conn{}
	return errors.Join(errs...)
}

// Source is pipeline pl's sql source.
func (p *Pool) Source(pl *engine.Pipeline) (engine.Source, error) {
	if pl.Spec.Source.SQL == nil {
		return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("%s: the source on sql connector %s declares no sql.select", pl.Name, pl.Source.Connector)}
	}
	return &source{p: p, pl: pl, spec: pl.Spec.Source.SQL}, nil
}

// Target is pipeline pl's sql upsert.
func (p *Pool) Target(pl *engine.Pipeline) (engine.Target, error) {
	if pl.Spec.Upsert.SQL == nil {
		return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("%s: the upsert into sql connector %s declares no sql table", pl.Name, pl.Upsert.Connector)}
	}
	return newTarget(p, pl), nil
}

// Caller: a sql connector sends no HTTP requests (engine check refuses
// enrich and after-steps on one).
func (p *Pool) Caller(name string) (engine.Caller, error) {
	return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("connector %s is a sql database: it answers no HTTP requests", name)}
}

// LoadTable runs lookup l's select and keys its rows by the key column.
func (p *Pool) LoadTable(ctx context.Context, l *engine.APILookup) (map[string]any, error) {
	ls, ok := p.plan.Spec.Lookups[l.Name]
	if !ok || ls.SQL == nil {
		return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("lookup %s declares no sql select", l.Name)}
	}
	c, err := p.open(ctx, ls.SQL.Connector)
	if err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, ls.SQL.Select)
	if err != nil {
		return nil, dbError(ls.SQL.Connector, "lookup "+l.Name, err)
	}
	recs, err := scanRows(rows)
	if err != nil {
		return nil, dbError(ls.SQL.Connector, "lookup "+l.Name, err)
	}
	table := make(map[string]any, len(recs))
	for i, r := range recs {
		row := r.(map[string]any)
		kv, ok := row[ls.SQL.Key]
		if !ok {
			return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("lookup %s: the select has no column %s", l.Name, ls.SQL.Key)}
		}
		key := engine.ScalarString(kv)
		if key == "" {
			continue // a row without a key cannot be looked up
		}
		var val any = row
		if ls.SQL.Value != "" {
			v, ok := row[ls.SQL.Value]
			if !ok {
				return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("lookup %s: the select has no column %s", l.Name, ls.SQL.Value)}
			}
			val = v
		}
		if _, dup := table[key]; dup {
			// Two rows for one key: which one wins would be the
			// database's order, so neither does.
			return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("lookup %s: key %q appears twice (row %d)", l.Name, key, i+1)}
		}
		table[key] = val
	}
	return table, nil
}
