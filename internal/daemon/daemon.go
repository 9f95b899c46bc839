package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"casesync/connectors/rest"
	"casesync/engine"
	"casesync/internal/state"
	"casesync/internal/wire"
)

// Config is what a Daemon needs; cmd/engine builds it.
type Config struct {
	// Plan is the deployment as first loaded.
	Plan *engine.Plan
	// Load re-reads the deployment for a reload: the same loader as
	// `engine check` (spec.Load) plus the command's base URL overrides.
	// Spec problems come back as spec.Problems, which /status shows with
	// their positions.
	Load func() (*engine.Plan, error)
	// Open wires a plan (internal/wire.Open with State as its state) and
	// tells observe how long each connector call took; the daemon closes
	// the deployment's connectors once no run uses them any more.
	Open func(plan *engine.Plan, observe func(connector, call string, d time.Duration)) (*wire.Deployment, error)
	// Secrets resolves inbox secrets (connectors resolve their own).
	Secrets engine.Secrets
	// State is the open state file; the caller closes it after Run.
	State *state.Store
	Clock engine.Clock
	Log   *slog.Logger
	// DrainTimeout bounds how long shutdown waits for runs to reach a page
	// boundary before cancelling them; 0 means 30 s.
	DrainTimeout time.Duration
	// InboxBatch is how many deliveries one inbox run takes; 0 means 10.
	// A run commits its outcomes at its end, so after a crash up to one
	// batch is processed again.
	InboxBatch int
	// OnEvent, when set, sees every event (tests wait on it instead of
	// sleeping). It must not block.
	OnEvent func(Event)
}

// Event is something the daemon did.
type Event struct {
	Kind     EventKind
	Pipeline string
	Trigger  string
	Hash     string
	Result   *engine.RunResult
	Err      error
	// N counts deliveries for inbox events.
	N int
}

// EventKind names an event.
type EventKind string

// The events.
const (
	EventReloaded        EventKind = "reloaded"
	EventReloadUnchanged EventKind = "reload_unchanged"
	EventReloadFailed    EventKind = "reload_failed"
	EventRunStarted      EventKind = "run_started"
	EventRunFinished     EventKind = "run_finished"
	EventRunCoalesced    EventKind = "run_coalesced"
	EventInboxAccepted   EventKind = "inbox_accepted"
	EventInboxProcessed  EventKind = "inbox_processed"
	EventPoolClosed      EventKind = "pool_closed"
	EventScheduled       EventKind = "scheduled" // the scheduler (re)computed the next cron times
	EventDraining        EventKind = "draining"  // shutdown began: runs stop at their next page boundary
)

// Errors for triggers.
var (
	// ErrRunning is returned by a manual trigger while the pipeline runs.
	ErrRunning = errors.New("pipeline is running")
	// ErrStopping is returned once shutdown has begun.
	ErrStopping = errors.New("daemon is shutting down")
	// ErrManualOff is returned for a pipeline with trigger.manual false.
	ErrManualOff = errors.New("pipeline does not allow manual runs (trigger.manual is false)")
)

// Daemon runs one deployment. Lifecycle:
//  1. New builds the first bundle (plan, runner, connectors) from
//     Config.Plan and fails when its connectors or inbox secrets cannot
//     be set up;
//  2. Handler serves HTTP (inbox, status, metrics, manual runs) as soon as
//     New returns; Run starts the scheduler, inbox workers and reloads,
//     and returns once ctx has ended and every run has stopped at a page
//     boundary and committed;
//  3. Run closes the connector pools on its way out; the caller closes
//     the state afterwards.
type Daemon struct {
	cfg Config
	log *slog.Logger
	m   *daemonMetrics
	// throttle slows clients that keep failing inbox authentication.
	throttle *authThrottle

	cur       atomic.Pointer[bundle]
	draining  atomic.Bool
	reloadReq chan []string // cap 1, paths merged in reloadPaths
	planKick  chan struct{} // cap 1: the scheduler recomputes

	reloadMu sync.Mutex // one reload at a time

	mu          sync.Mutex
	life        context.Context // Run's context; nil before Run
	slots       map[string]*slot
	live        map[*bundle]bool      // pools not yet closed
	closedStats map[string]rest.Stats // summed counters of closed pools
	reloadPaths []string
	reloadInfo  reloadStatus
	nextCron    map[string]time.Time
	runs        map[*runHandle]bool
	wg          sync.WaitGroup // run and trigger goroutines
	loops       sync.WaitGroup // scheduler, reload loop, inbox workers
	started     time.Time
}

// New builds the daemon around cfg.Plan.
func New(cfg Config) (*Daemon, error) {
	if cfg.Plan == nil || cfg.Load == nil || cfg.Open == nil || cfg.State == nil {
		return nil, errors.New("daemon: Plan, Load, Open and State are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = engine.SystemClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.InboxBatch <= 0 {
		cfg.InboxBatch = 10
	}
	d := &Daemon{
		cfg:         cfg,
		log:         cfg.Log,
		reloadReq:   make(chan []string, 1),
		throttle:    newAuthThrottle(),
		planKick:    make(chan struct{}, 1),
		slots:       map[string]*slot{},
		live:        map[*bundle]bool{},
		closedStats: map[string]rest.Stats{},
		nextCron:    map[string]time.Time{},
		runs:        map[*runHandle]bool{},
		started:     cfg.Clock.Now(),
	}
	d.m = newDaemonMetrics(d)
	b, err := d.build(cfg.Plan)
	if err != nil {
		return nil, err
	}
	d.cur.Store(b)
	d.reloadInfo.loadedAt = d.cfg.Clock.Now()
	if err := d.countPending(context.Background(), b.plan); err != nil {
		d.closeBundle(b)
		return nil, err
	}
	return d, nil
}

// Plan returns the plan new runs use.
func (d *Daemon) Plan() *engine.Plan { return d.cur.Load().plan }

// Ready reports whether the daemon serves: a plan is loaded, the state is
// open, and shutdown has not begun.
func (d *Daemon) Ready() bool { return d.cur.Load() != nil && !d.draining.Load() }

func (d *Daemon) event(e Event) {
	if d.cfg.OnEvent != nil {
		d.cfg.OnEvent(e)
	}
}

// Run runs schedules, inbox workers and reloads until ctx ends, then drains:
// runs stop at their next page boundary (or, after DrainTimeout, are
// cancelled), commit, and the connector pools close.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.life != nil {
		d.mu.Unlock()
		return errors.New("daemon: Run called twice")
	}
	d.life = ctx
	d.mu.Unlock()

	d.loops.Add(2)
	go func() { defer d.loops.Done(); d.reloadLoop(ctx) }()
	go func() { defer d.loops.Done(); d.scheduler(ctx) }()
	d.startInboxWorkers(d.cur.Load().plan, true)

	<-ctx.Done()
	d.log.Info("shutting down: runs stop at their next page boundary", "drain_timeout", d.cfg.DrainTimeout)
	d.mu.Lock()
	d.draining.Store(true)
	d.mu.Unlock()
	d.event(Event{Kind: EventDraining})
	// Loops (the scheduler, reloads, inbox workers) and runs end together:
	// an inbox worker may be inside a batch, which counts as a run.
	done := make(chan struct{})
	go func() { d.loops.Wait(); d.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d.cfg.DrainTimeout):
		d.log.Warn("runs did not reach a page boundary in time; cancelling them", "drain_timeout", d.cfg.DrainTimeout)
		d.mu.Lock()
		for h := range d.runs {
			h.cancel()
		}
		d.mu.Unlock()
		<-done
	}
	d.mu.Lock()
	bundles := make([]*bundle, 0, len(d.live))
	for b := range d.live {
		bundles = append(bundles, b)
	}
	d.mu.Unlock()
	for _, b := range bundles {
		d.closeBundle(b)
	}
	return nil
}

// spawn runs fn in a goroutine the daemon waits for at shutdown; it
// refuses once draining has begun.
func (d *Daemon) spawn(fn func()) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.draining.Load() {
		return ErrStopping
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		fn()
	}()
	return nil
}

// lifetime returns Run's context, or a cancelled one before Run.
func (d *Daemon) lifetime() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.life == nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}
	return d.life
}

// runHandle is one run's own context: not cancelled by shutdown directly,
// so a page in flight finishes; the source listing's page boundary (or the
// drain deadline) cancels it.
type runHandle struct {
	cancel context.CancelFunc
}

type runKey struct{}

func (d *Daemon) runContext() (context.Context, *runHandle, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	h := &runHandle{cancel: cancel}
	ctx = context.WithValue(ctx, runKey{}, h)
	d.mu.Lock()
	d.runs[h] = true
	d.mu.Unlock()
	return ctx, h, func() {
		cancel()
		d.mu.Lock()
		delete(d.runs, h)
		d.mu.Unlock()
	}
}

// atPageBoundary is called by the source listing before each page is
// handed to the runner: once shutdown has begun, it cancels the run there,
// when every earlier page has been processed and committed.
func (d *Daemon) atPageBoundary(ctx context.Context) error {
	if !d.draining.Load() {
		return nil
	}
	if h, ok := ctx.Value(runKey{}).(*runHandle); ok {
		h.cancel()
	}
	return fmt.Errorf("stopping at a page boundary: %w", context.Canceled)
}
