// Package wire is the one place a deployment is wired: it loads the plan,
// opens the state, builds the connectors and returns a ready runner. Every
// command, the daemon, the demo, the bench and the tests go through it, so
// a new kind of connector or a new port is wired once.
package wire

import (
	"fmt"
	"log/slog"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/state"
)

// LoadOptions adjust a plan as it is loaded.
type LoadOptions struct {
	// Spec are the loader's own options.
	Spec spec.Options
	// BaseURLs point named connectors at other servers (the demo's fakes,
	// a staging server, a test's sandbox).
	BaseURLs map[string]string
	// Concurrency, when > 0, is every connector's requests in flight; the
	// pipelines keep twice that many records in flight (engine bench).
	Concurrency int
}

// Load loads and compiles the deployment in dir. Spec problems come back
// as spec.Problems.
func Load(dir string, o LoadOptions) (*engine.Plan, error) {
	plan, err := spec.Load(dir, o.Spec)
	if err != nil {
		return nil, err
	}
	return Adjust(plan, o)
}

// Adjust applies o's base URLs and concurrency to a loaded plan, returning
// a copy (the plan itself is never changed).
func Adjust(plan *engine.Plan, o LoadOptions) (*engine.Plan, error) {
	for name := range o.BaseURLs {
		if _, ok := plan.Connectors[name]; !ok {
			return nil, fmt.Errorf("no connector %q in %s", name, plan.Name)
		}
	}
	return plan.WithBaseURLs(o.BaseURLs).WithConcurrency(o.Concurrency), nil
}

// Options are what a deployment is opened with.
type Options struct {
	// StatePath is the state file, created and migrated when missing.
	// Ignored when State is set.
	StatePath string
	// StateWait is how long to wait for another process's lease on the
	// state file; 0 fails at once when it is held.
	StateWait time.Duration
	// State is a state file the caller opened and closes (the daemon's,
	// a dry-run's read-only one).
	State *state.Store
	// Secrets resolve the secrets the plan names.
	Secrets engine.Secrets
	// Clock is the runner's and the connectors' clock; nil is the system
	// clock.
	Clock engine.Clock
	// Log receives the runner's and connectors' logs; nil discards.
	Log *slog.Logger
	// REST are the HTTP connectors' options; Logger defaults to Log. Its
	// Clock stays its own: a test may fix the runner's clock and still
	// need token expiry on the wall clock.
	REST rest.Options
}

// Deployment is a plan wired to its state and connectors.
type Deployment struct {
	Plan  *engine.Plan
	State *state.Store
	// Conns are the HTTP connectors; Ports every connector, of every kind.
	Conns  *rest.Pool
	Ports  *Conns
	Runner *engine.Runner

	ownsState bool
}

// Open wires plan: the state file, the connectors and a runner.
func Open(plan *engine.Plan, o Options) (*Deployment, error) {
	if o.Clock == nil {
		o.Clock = engine.SystemClock{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// A line logged while a record is processed carries none of its
	// classified values (the deployment's sensitivity classes).
	o.Log = engine.ScrubLogger(o.Log)
	d := &Deployment{Plan: plan, State: o.State}
	if d.State == nil {
		st, err := state.Open(o.StatePath, state.WithWait(o.StateWait))
		if err != nil {
			return nil, fmt.Errorf("open state %s: %w", o.StatePath, err)
		}
		d.State, d.ownsState = st, true
	}
	ports, err := Connect(plan, o)
	if err != nil {
		d.Close()
		return nil, err
	}
	d.Ports, d.Conns = ports, ports.REST
	d.Runner = engine.NewRunner(plan, ports, d.State, o.Clock, o.Log)
	return d, nil
}

// OpenDir loads the deployment in dir and opens it.
func OpenDir(dir string, lo LoadOptions, o Options) (*Deployment, error) {
	plan, err := Load(dir, lo)
	if err != nil {
		return nil, err
	}
	return Open(plan, o)
}

// Connect builds the connectors of plan: HTTP APIs through connectors/rest,
// every other kind through its package (kinds), each port routed by the
// kind of the connector it names.
func Connect(plan *engine.Plan, o Options) (*Conns, error) {
	ro := o.REST
	if ro.Logger == nil {
		ro.Logger = o.Log
	}
	ro.Logger = engine.ScrubLogger(ro.Logger)
	pool, err := rest.NewPool(plan, o.Secrets, ro)
	if err != nil {
		return nil, err
	}
	c := &Conns{REST: pool, plan: plan, other: map[string]kindPorts{}}
	for _, cn := range plan.Connectors {
		if build, ok := kinds[cn.Kind]; ok && c.other[cn.Kind] == nil {
			c.other[cn.Kind] = build(plan, o.Secrets)
		}
	}
	return c, nil
}

// Close closes the connectors, and the state file when Open opened it.
func (d *Deployment) Close() error {
	var err error
	if d.Ports != nil {
		err = d.Ports.Close()
	}
	if d.ownsState && d.State != nil {
		if cerr := d.State.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
