package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"casesync/engine"
	"casesync/internal/state"
)

// slot serialises one pipeline's runs across reloads: whichever bundle a
// run uses, two runs of one pipeline never overlap.
type slot struct {
	name string
	sem  chan struct{} // held while a run is in flight
	// queued is set while a cron or chained run waits for sem; further
	// triggers meanwhile collapse into it.
	queued  atomic.Bool
	running atomic.Pointer[runInfo]
	inbox   chan struct{} // cap 1: deliveries may be waiting
	pending atomic.Int64  // inbox deliveries not yet processed

	worker bool // an inbox worker runs (guarded by Daemon.mu)

	// listed is set when a run of this pipeline that reads its source
	// (not an inbox batch) starts in this process, before its row is
	// written: catching up at start must not take that row, running, for
	// one a crash left behind, nor queue a second run behind it.
	listed atomic.Bool

	mu   sync.Mutex
	seen engine.Counts // counts already added to the metrics for the run in flight
}

type runInfo struct {
	Trigger string
	Started time.Time
	Hash    string
}

func (d *Daemon) slot(name string) *slot {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.slots[name]
	if s == nil {
		s = &slot{name: name, sem: make(chan struct{}, 1), inbox: make(chan struct{}, 1)}
		d.slots[name] = s
	}
	return s
}

func (s *slot) tryLock() bool {
	select {
	case s.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *slot) lock(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slot) unlock() { <-s.sem }

// Trigger starts a run of pipeline now. With wait false (a manual run) a
// pipeline already running is ErrRunning; with wait true (cron, chains) the
// run is queued behind it, and triggers arriving while one is queued
// collapse into that one.
//
// A branch runs with its siblings, over their pipeline's one listing: the
// trigger of a branch, or of the pipeline with branches, starts that
// pipeline's run.
func (d *Daemon) Trigger(pipeline, trigger string, wait bool) error {
	plan := d.cur.Load().plan
	pipeline = plan.Unit(pipeline)
	p, ok := plan.Pipelines[plan.Members(pipeline)[0]]
	if !ok {
		return fmt.Errorf("%w %q", errUnknown, pipeline)
	}
	if trigger == "manual" && !p.Spec.Trigger.Manual {
		return ErrManualOff
	}
	if d.draining.Load() {
		return ErrStopping
	}
	s := d.slot(pipeline)
	if p.Source.NoListing {
		// Nothing to list: a trigger processes the deliveries waiting in
		// the pipeline's inbox, which its worker does.
		select {
		case s.inbox <- struct{}{}:
		default:
		}
		return nil
	}
	if s.tryLock() {
		if err := d.spawn(func() { d.runHolding(s, trigger) }); err != nil {
			s.unlock()
			return err
		}
		return nil
	}
	if !wait {
		return ErrRunning
	}
	if !s.queued.CompareAndSwap(false, true) {
		d.m.coalesced.Inc(pipeline)
		d.event(Event{Kind: EventRunCoalesced, Pipeline: pipeline, Trigger: trigger})
		return nil
	}
	err := d.spawn(func() {
		err := s.lock(d.lifetime())
		s.queued.Store(false)
		if err != nil {
			return // shutting down
		}
		d.runHolding(s, trigger)
	})
	if err != nil {
		s.queued.Store(false)
	}
	return err
}

// runHolding runs the pipeline with its slot held, releases the slot, and
// then starts the pipelines chained after it when it succeeded.
func (d *Daemon) runHolding(s *slot, trigger string) {
	results, _ := d.executeUnit(s, engine.SyncOptions{Trigger: trigger}, false)
	s.unlock()
	// Each pipeline (or branch) that succeeded starts what is chained
	// after it; a pipeline chained after several branches starts once.
	plan := d.cur.Load().plan
	started := map[string]bool{}
	for _, res := range results {
		if res.Err != nil {
			continue
		}
		for _, name := range plan.ChainedAfter(res.Pipeline) {
			if unit := plan.Unit(name); !started[unit] {
				started[unit] = true
				if err := d.Trigger(unit, "after:"+res.Pipeline, true); err != nil && !errors.Is(err, ErrStopping) {
					d.log.Warn("chained run not started", "pipeline", unit, "after", res.Pipeline, "error", err)
				}
			}
		}
	}
}

// execute runs one Sync with the slot held by the caller, on the current
// bundle, which it keeps until the run ends.
func (d *Daemon) execute(s *slot, opts engine.SyncOptions, inboxFetch bool) (*engine.RunResult, error) {
	results, err := d.executeUnit(s, opts, inboxFetch)
	if len(results) == 0 {
		return nil, err
	}
	return results[0], err
}

// executeUnit runs the slot's pipeline, or all the branches of a pipeline
// with branches (one listing), with the slot held by the caller, on the
// current bundle, which it keeps until the run ends. Each branch is
// reported (events, metrics, log) as the pipeline of its own name it is.
func (d *Daemon) executeUnit(s *slot, opts engine.SyncOptions, inboxFetch bool) ([]*engine.RunResult, error) {
	b := d.acquire()
	defer d.release(b)
	runner := b.runner
	members := b.plan.Members(s.name)
	p, ok := b.plan.Pipelines[members[0]]
	if !ok {
		return nil, fmt.Errorf("%w %q in the current plan", errUnknown, s.name)
	}
	if inboxFetch && p.Inbox != nil && p.Inbox.Fetch != nil {
		// Inbox keys are re-fetched with trigger.inbox.fetch in place of
		// source.get.
		opts.Fetch = p.Inbox.Fetch
	}
	ctx, _, done := d.runContext()
	defer done()
	reads := opts.Records == nil && len(opts.Keys) == 0
	for _, name := range members {
		ms := d.slot(name)
		if reads {
			ms.listed.Store(true)
		}
		ms.mu.Lock()
		ms.seen = engine.Counts{}
		ms.mu.Unlock()
		ms.running.Store(&runInfo{Trigger: opts.Trigger, Started: d.cfg.Clock.Now(), Hash: b.plan.Hash})
		d.m.inProgress.Add(1)
		d.event(Event{Kind: EventRunStarted, Pipeline: name, Trigger: opts.Trigger, Hash: b.plan.Hash})
		d.log.Info("run started", "pipeline", name, "trigger", opts.Trigger, "hash", b.plan.Hash)
	}

	results, err := runner.SyncUnit(ctx, s.name, opts)

	byName := map[string]*engine.RunResult{}
	for _, res := range results {
		byName[res.Pipeline] = res
	}
	for _, name := range members {
		res := byName[name]
		rerr := err
		if res != nil && len(members) > 1 {
			rerr = res.Err // each branch's own
		}
		d.finished(ctx, d.slot(name), opts, b.plan.Hash, res, rerr)
	}
	return results, err
}

// finished reports one pipeline's run: its slot, metrics, log and event.
func (d *Daemon) finished(ctx context.Context, s *slot, opts engine.SyncOptions, hash string, res *engine.RunResult, err error) {
	s.running.Store(nil)
	d.m.inProgress.Add(-1)
	status := "succeeded"
	if err != nil {
		status = "failed"
		if ctx.Err() != nil {
			status = "interrupted"
		}
	}
	if res != nil {
		d.addCounts(s, res.Counts)
		d.m.runDur.Observe(res.Duration.Seconds(), s.name)
		for k, n := range res.Counts.LookupMisses {
			lookup, policy, _ := strings.Cut(k, ":")
			d.m.lookupMisses.Add(float64(n), s.name, lookup, policy)
		}
	}
	d.m.runs.Inc(s.name, triggerKind(opts.Trigger), status)
	if err != nil {
		// A run cut short by a shutdown resumes at the next start: warn,
		// not error, or every restart would page someone.
		lvl := slog.LevelError
		if status == "interrupted" {
			lvl = slog.LevelWarn
		}
		d.log.Log(context.Background(), lvl, "run "+status, "pipeline", s.name, "trigger", opts.Trigger, "error", err)
	} else {
		c := res.Counts
		// A run that finished with failed records is not a clean success:
		// at warn, an alert on warnings sees the records waiting for a retry.
		lvl, msg := slog.LevelInfo, "run succeeded"
		if c.Failed > 0 {
			lvl, msg = slog.LevelWarn, "run finished with failed records"
		}
		d.log.Log(context.Background(), lvl, msg, "pipeline", s.name, "trigger", opts.Trigger, "read", c.Read, "created", c.Created,
			"updated", c.Updated, "unchanged", c.Unchanged, "skipped", c.Skipped, "failed", c.Failed, "duration", res.Duration.Round(time.Millisecond))
	}
	d.event(Event{Kind: EventRunFinished, Pipeline: s.name, Trigger: opts.Trigger, Hash: hash, Result: res, Err: err})
}

func triggerKind(t string) string {
	if k, _, ok := strings.Cut(t, ":"); ok {
		return k
	}
	return t
}

// progress adds a page's counts to the metrics as the run goes.
func (d *Daemon) progress(e engine.ProgressEvent) {
	d.addCounts(d.slot(e.Pipeline), e.Counts)
}

// outcomeNotProcessed labels the records a stopped run left for the next
// one (engine.Counts.NotProcessed): not failed, not charged.
const outcomeNotProcessed = "not_processed"

// addCounts adds what c has beyond what the slot's run already reported.
func (d *Daemon) addCounts(s *slot, c engine.Counts) {
	s.mu.Lock()
	prev := s.seen
	s.seen = c
	s.mu.Unlock()
	for _, x := range []struct {
		outcome   string
		now, then int
	}{
		{"read", c.Read, prev.Read},
		{string(engine.ActionCreated), c.Created, prev.Created},
		{string(engine.ActionUpdated), c.Updated, prev.Updated},
		{string(engine.ActionUnchanged), c.Unchanged, prev.Unchanged},
		{string(engine.ActionSkipped), c.Skipped, prev.Skipped},
		{string(engine.ActionFailed), c.Failed, prev.Failed},
		{outcomeNotProcessed, c.NotProcessed, prev.NotProcessed},
	} {
		if n := x.now - x.then; n > 0 {
			d.m.records.Add(float64(n), s.name, x.outcome)
		}
	}
}

// scheduler fires cron triggers. At start it runs, once, every pipeline
// whose schedule came due while the daemon was down (or whose last run was
// cut short), however many times it came due.
func (d *Daemon) scheduler(ctx context.Context) {
	d.catchUp(ctx)
	type entry struct {
		expr string
		next time.Time
	}
	next := map[string]entry{}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		b := d.cur.Load()
		now := d.cfg.Clock.Now()
		var earliest time.Time
		for name := range next {
			if _, ok := b.schedules[name]; !ok {
				delete(next, name)
			}
		}
		for name, sched := range b.schedules {
			expr := b.plan.Pipelines[b.plan.Members(name)[0]].Spec.Trigger.Cron
			e, ok := next[name]
			if !ok || e.expr != expr {
				e = entry{expr: expr, next: sched.Next(now)}
				next[name] = e
			}
			if earliest.IsZero() || e.next.Before(earliest) {
				earliest = e.next
			}
		}
		d.mu.Lock()
		clear(d.nextCron)
		for name, e := range next {
			for _, m := range b.plan.Members(name) {
				d.nextCron[m] = e.next
			}
		}
		d.mu.Unlock()
		d.event(Event{Kind: EventScheduled, Hash: b.plan.Hash})
		wait := time.Hour
		if !earliest.IsZero() {
			wait = max(earliest.Sub(now), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-d.planKick:
			timer.Stop()
		case <-timer.C:
			now = d.cfg.Clock.Now()
			for name, e := range next {
				if e.next.After(now) {
					continue
				}
				if err := d.Trigger(name, "cron", true); err != nil && !errors.Is(err, ErrStopping) {
					d.log.Warn("scheduled run not started", "pipeline", name, "error", err)
				}
				e.next = b.schedules[name].Next(now)
				next[name] = e
			}
		}
	}
}

// catchUp runs once each scheduled pipeline whose schedule came due since
// its last full run started, or whose last full run never finished.
func (d *Daemon) catchUp(ctx context.Context) {
	b := d.cur.Load()
	now := d.cfg.Clock.Now()
	seen := map[string]bool{}
	for _, n := range b.plan.Order {
		name := b.plan.Unit(n)
		sched, ok := b.schedules[name]
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		// A pipeline with branches is scheduled under its own name and
		// caught up by the first of its branches' runs.
		last, ok, err := d.lastFullRun(ctx, b.plan.Members(name)[0])
		if err != nil {
			d.log.Warn("read last run for the schedule", "pipeline", name, "error", err)
			continue
		}
		if !ok {
			continue // never ran: wait for the schedule (or a manual run)
		}
		if d.slot(b.plan.Members(name)[0]).listed.Load() {
			// Read after the runs: a run of this process already read (or
			// reads now) the source, so there is nothing to catch up on,
			// and a row it left running is its own, not a crash's.
			continue
		}
		reason := ""
		switch {
		case last.Status == state.StatusRunning || last.Status == state.StatusInterrupted:
			reason = "the last run did not finish"
		case !sched.Next(last.Started).After(now):
			reason = "a scheduled run was missed while the daemon was down"
		default:
			continue
		}
		d.log.Info("catching up: running once now", "pipeline", name, "reason", reason, "last_started", last.Started)
		if err := d.Trigger(name, "cron", true); err != nil && !errors.Is(err, ErrStopping) {
			d.log.Warn("catch-up run not started", "pipeline", name, "error", err)
		}
	}
}

// lastFullRun is the latest run that read the source (not an inbox batch).
func (d *Daemon) lastFullRun(ctx context.Context, pipeline string) (engine.RunInfo, bool, error) {
	runs, err := d.cfg.State.Runs(ctx, pipeline, 5000)
	if err != nil {
		return engine.RunInfo{}, false, err
	}
	for _, r := range runs {
		if r.Trigger != triggerInbox {
			return r, true, nil
		}
	}
	return engine.RunInfo{}, false, nil
}

// NextRuns returns each scheduled pipeline's next cron time.
func (d *Daemon) NextRuns() map[string]time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]time.Time, len(d.nextCron))
	for k, v := range d.nextCron {
		out[k] = v
	}
	return out
}
