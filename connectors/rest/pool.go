package rest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"casesync/engine"
	"casesync/internal/redact"
)

// Pool holds one Client per connector of a plan, so every pipeline using a
// connector shares its login, rate limit and concurrency cap. Lifecycle:
//  1. NewPool builds every client (failing on the first bad connector, with
//     every connector's problem joined);
//  2. Get hands out a connector's Client to any number of goroutines;
//  3. the owner of the plan's run calls Close, which closes every client and
//     is safe to call twice.
type Pool struct {
	clients map[string]*Client
	names   []string
	once    sync.Once
}

// NewPool builds a Client for each connector of plan. The clients share
// one Redactor (opts.Redactor, or a new one) that knows every secret the
// plan declares, so no connector can print another's secret. When
// opts.Rand is set, each client gets its own generator seeded from it in
// name order, so jitter stays deterministic and no generator is shared.
func NewPool(plan *engine.Plan, secrets engine.Secrets, opts Options) (*Pool, error) {
	p := &Pool{clients: map[string]*Client{}}
	if opts.Redactor == nil {
		opts.Redactor = redact.New()
	}
	if secrets != nil {
		for _, name := range plan.Secrets {
			if v, ok := secrets.Secret(name); ok {
				opts.Redactor.Add(v)
			}
		}
	}
	for name, c := range plan.Connectors {
		if c.Kind != "" && c.Kind != "rest" {
			continue // another kind's connector (internal/wire routes to it)
		}
		p.names = append(p.names, name)
	}
	slices.Sort(p.names)
	var errs []error
	for _, name := range p.names {
		conn := plan.Connectors[name]
		if conn.Name == "" {
			cp := *conn
			cp.Name = name
			conn = &cp
		}
		o := opts
		if opts.Rand != nil {
			o.Rand = rand.New(rand.NewPCG(opts.Rand.Uint64(), opts.Rand.Uint64()))
		}
		c, err := New(conn, secrets, o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		p.clients[name] = c
	}
	if len(errs) > 0 {
		p.Close()
		return nil, fmt.Errorf("build connectors: %w", errors.Join(errs...))
	}
	return p, nil
}

// Get returns the named connector, or nil when the plan has none by that
// name (engine/spec resolves connector references, so that is a bug).
func (p *Pool) Get(name string) *Client {
	if c, ok := p.clients[name]; ok {
		return c
	}
	return nil
}

// Client returns the named connector as a *Client, for Stats.
func (p *Pool) Client(name string) *Client { return p.clients[name] }

// Stats returns every connector's counters, sorted by name.
func (p *Pool) Stats() []Stats {
	out := make([]Stats, 0, len(p.clients))
	for _, name := range p.names {
		if c, ok := p.clients[name]; ok {
			out = append(out, c.Stats())
		}
	}
	return out
}

// Close closes every client; it is safe to call twice.
func (p *Pool) Close() error {
	var errs []error
	p.once.Do(func() {
		for _, c := range p.clients {
			errs = append(errs, c.Close())
		}
	})
	return errors.Join(errs...)
}
