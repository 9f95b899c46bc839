package daemon

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/engine/spec"
)

// bundle is everything one plan runs with. A run holds a reference for its
// whole length, so a reload never changes the plan, runner or connectors
// under it; the pool closes when the last run of a replaced bundle ends.
type bundle struct {
	plan      *engine.Plan
	pool      *rest.Pool
	runner    *engine.Runner
	inboxes   map[string]*inbox // by path
	schedules map[string]cron.Schedule
	loadedAt  time.Time

	mu      sync.Mutex
	refs    int
	retired bool
	closed  bool
}

// build makes a bundle for plan: connectors, runners, inbox secrets and
// schedules. Anything missing fails the build, so a reload that cannot run
// never replaces one that can.
func (d *Daemon) build(plan *engine.Plan) (*bundle, error) {
	var missing []string
	for _, n := range plan.Secrets {
		if d.cfg.Secrets == nil {
			missing = append(missing, n)
			continue
		}
		if _, ok := d.cfg.Secrets.Secret(n); !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("secret(s) not set: %s", strings.Join(missing, ", "))
	}
	b := &bundle{plan: plan, inboxes: map[string]*inbox{},
		schedules: map[string]cron.Schedule{}, loadedAt: d.cfg.Clock.Now()}
	for _, name := range plan.Order {
		p := plan.Pipelines[name]
		if c := p.Spec.Trigger.Cron; c != "" {
			s, err := spec.ParseCron(c)
			if err != nil {
				return nil, fmt.Errorf("%s: trigger.cron %q: %w", name, c, err)
			}
			b.schedules[plan.Unit(name)] = s
		}
		if p.Inbox != nil {
			in := &inbox{pipeline: p}
			if p.Inbox.Secret != (engine.Text{}) {
				secret, err := p.Inbox.Secret.Resolve(d.cfg.Secrets)
				if err != nil {
					return nil, fmt.Errorf("%s: trigger.inbox.secret: %w", name, err)
				}
				if secret == "" {
					return nil, fmt.Errorf("%s: trigger.inbox.secret is empty", name)
				}
				in.secretHash, in.hasSecret = sha256.Sum256([]byte(secret)), true
			}
			if h := p.Inbox.HMAC; h != nil {
				key, err := h.Secret.Resolve(d.cfg.Secrets)
				if err != nil {
					return nil, fmt.Errorf("%s: trigger.inbox.hmac.secret: %w", name, err)
				}
				if key == "" {
					return nil, fmt.Errorf("%s: trigger.inbox.hmac.secret is empty", name)
				}
				in.hmacKey = []byte(key)
			}
			if !in.hasSecret && in.hmacKey == nil {
				return nil, fmt.Errorf("%s: trigger.inbox has neither secret nor hmac", name)
			}
			if reservedPath(p.Inbox.Path) {
				return nil, fmt.Errorf("%s: trigger.inbox.path %s is one of the daemon's own endpoints", name, p.Inbox.Path)
			}
			b.inboxes[p.Inbox.Path] = in
		}
	}
	dep, err := d.cfg.Open(plan, d.observe)
	if err != nil {
		return nil, err
	}
	b.pool = dep.Conns
	b.runner = dep.Runner
	b.runner.Progress = d.progress
	// Stop a source listing at a page boundary on shutdown.
	b.runner.BeforePage = d.atPageBoundary
	d.mu.Lock()
	d.live[b] = true
	d.mu.Unlock()
	return b, nil
}

// acquire returns the current bundle with a reference held; release it
// when the run ends.
func (d *Daemon) acquire() *bundle {
	for {
		b := d.cur.Load()
		b.mu.Lock()
		if !b.closed {
			b.refs++
			b.mu.Unlock()
			return b
		}
		// Swapped and closed between Load and Lock: take the new one.
		b.mu.Unlock()
	}
}

func (d *Daemon) release(b *bundle) {
	b.mu.Lock()
	b.refs--
	last := b.refs == 0 && b.retired
	b.mu.Unlock()
	if last {
		d.closeBundle(b)
	}
}

// retire marks a replaced bundle; its pool closes after its last run.
func (d *Daemon) retire(b *bundle) {
	b.mu.Lock()
	b.retired = true
	idle := b.refs == 0
	b.mu.Unlock()
	if idle {
		d.closeBundle(b)
	}
}

func (d *Daemon) closeBundle(b *bundle) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	// Keep the pool's counters: metrics are totals since the daemon started.
	stats := b.pool.Stats()
	if err := b.pool.Close(); err != nil {
		d.log.Warn("close connectors", "hash", b.plan.Hash, "error", err)
	}
	d.mu.Lock()
	delete(d.live, b)
	for _, s := range stats {
		t := d.closedStats[s.Connector]
		t.Connector = s.Connector
		t.Requests += s.Requests
		t.Retries += s.Retries
		t.Throttled += s.Throttled
		t.Logins += s.Logins
		d.closedStats[s.Connector] = t
	}
	d.mu.Unlock()
	d.event(Event{Kind: EventPoolClosed, Hash: b.plan.Hash})
}

// connectorStats sums every pool's counters, closed ones included.
func (d *Daemon) connectorStats() map[string]rest.Stats {
	d.mu.Lock()
	out := make(map[string]rest.Stats, len(d.closedStats))
	for k, v := range d.closedStats {
		out[k] = v
	}
	live := make([]*bundle, 0, len(d.live))
	for b := range d.live {
		live = append(live, b)
	}
	d.mu.Unlock()
	for _, b := range live {
		for _, s := range b.pool.Stats() {
			t := out[s.Connector]
			t.Connector = s.Connector
			t.Requests += s.Requests
			t.Retries += s.Retries
			t.Throttled += s.Throttled
			t.Logins += s.Logins
			out[s.Connector] = t
		}
	}
	return out
}

// observe records a connector call's latency.
func (d *Daemon) observe(connector, call string, dur time.Duration) {
	d.m.requestDur.Observe(dur.Seconds(), connector, call)
}

var errUnknown = errors.New("unknown pipeline")
