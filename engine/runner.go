package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"casesync/engine/mapping"
)

// Runner runs the pipelines of one plan. Lifecycle:
//  1. construct with NewRunner (plan, connectors, state, clock), or let
//     internal/app wire one;
//  2. call Sync for a pipeline, as often as needed; calls for different
//     pipelines may run at once, two for the same pipeline must not (the
//     daemon's scheduler ensures it);
//  3. the constructor's caller closes the connectors and the state.
type Runner struct {
	plan  *Plan
	conns Connectors
	state RunState
	clock Clock
	log   *slog.Logger
	// Progress, when set, is called after every page of the source
	// listing has been processed and committed, from the goroutine that
	// called Sync.
	Progress func(ProgressEvent)
	// BeforePage, when set, is called before each source page is
	// processed: a page boundary, where every earlier page is decided and
	// committed, or (a batch target's last page) committing, which the run
	// waits for before it returns. An error stops the listing there (the
	// daemon's drain on shutdown).
	BeforePage func(ctx context.Context) error
	// Sleep waits for d or until ctx ends; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error

	// crash is the CASESYNC_CRASH_AT fault-injection hook (crash.go); nil
	// unless the variable is set.
	crash    *crashHook
	crashErr error
}

// ProgressEvent reports a running sync after each page.
type ProgressEvent struct {
	Pipeline string
	// Page is the 1-based number of the page just committed.
	Page int
	// Counts are the run's totals so far, this page included.
	Counts Counts
	// Total is the server's announced total of records, -1 when unknown.
	Total   int
	Elapsed time.Duration
}

// NewRunner returns a runner for plan.
func NewRunner(plan *Plan, conns Connectors, state RunState, clock Clock, log *slog.Logger) *Runner {
	if clock == nil {
		clock = SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Runner{plan: plan, conns: conns, state: state, clock: clock, log: log, Sleep: sleepCtx}
	r.crash, r.crashErr = parseCrash(os.Getenv(CrashEnv))
	return r
}

// Plan returns the plan the runner runs.
func (r *Runner) Plan() *Plan { return r.plan }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrNoListing is a run asked of a pipeline whose source has no listing.
var ErrNoListing = errors.New("no listing to read")

// SyncOptions tune one run.
type SyncOptions struct {
	Trigger string // manual, cron, after:<pipeline>, inbox, retry
	// Limit stops after this many source records (0 = all).
	Limit int
	// Keys restricts the run to these source record keys (retry, inbox):
	// the listing is skipped and each key is re-fetched with source.get.
	Keys []string
	// Since overrides the cursor for this run (dry-run --since).
	Since string
	// Records, when set, are processed instead of reading the source
	// (dry-run --from): one page, no cursor movement.
	Records []any
	// DryRun, when set, receives every decision and nothing is written:
	// no target writes, no after-steps, no state changes.
	DryRun func(Decision)
	// SkipRetries leaves the retry queue alone for this run.
	SkipRetries bool
	// Baseline is the cutover from an integration that ran before: every
	// write the run would send is recorded as already delivered (outcome
	// unchanged, reason baseline, with its payload hash and any target id
	// found) and not sent, so a later run sends only what changes or is
	// new. Reads (listing, enrich, find) happen as usual; no write and no
	// after-step does.
	Baseline bool
	// Fetch, when set, re-fetches Keys with this request in place of
	// source.get (an inbox's trigger.inbox.fetch).
	Fetch *Request
	// Deliveries are the webhook deliveries the records came in, by
	// source record key: filters, mappings and after-steps read them as
	// delivery / $delivery (id, event, query, headers).
	Deliveries map[string]any
	// Pushed marks Records as pushed by a webhook (an inbox without
	// fetch): there is no source to re-read one from, so a record that
	// fails keeps its body in the retry queue and is retried from there.
	Pushed bool
}

// RunResult summarises a run.
type RunResult struct {
	RunID    int64
	Pipeline string
	Counts   Counts
	// Reasons counts skipped and failed records by reason code.
	Reasons map[string]int
	// Misses counts lookup misses by lookup name.
	Misses map[string]int
	// Writes counts the writes the target accepted, per connector: upserts
	// that passed their ok check, and after-steps without a poll (a polled
	// step starts by reading a status). The demo prints it beside the
	// fakes' own counts.
	Writes   map[string]int
	Cursor   string
	Duration time.Duration
	// Failed is set when the run itself failed (not single records).
	Err error
}

// Decision is what the engine decided for one record or item; dry-run
// prints it, sync records it as an Outcome.
type Decision struct {
	Pipeline  string
	RecordKey string
	Action    Action
	Reason    string
	Error     string
	Class     Class
	TargetID  string
	// Request is the write that was (or would be) sent.
	Request *CallPreview
	// Before is the target's current record when one was found (for diffs).
	Before any
	// Payload is the mapped payload; PayloadHash its hash once written.
	Payload     any
	PayloadHash string
	// Transaction is an asynchronous job id the target answered with.
	Transaction string
	// MissLookup and MissKey name a lookup miss; dry-run shows them, the
	// state never stores the key.
	MissLookup, MissKey string
	// Notes are the item's field-level notes (jq note($code)), sorted.
	Notes []string
	// Unconfirmed: a failed create that may have reached the target.
	Unconfirmed bool
}

// run is one Sync of one pipeline: the stages it composes and the
// counters that belong to this run alone (never to the plan).
type run struct {
	r    *Runner
	p    *Pipeline
	opts SyncOptions
	id   int64
	// started is the run's start; vars are the run's template variables
	// ($vars, $cursor, $now) and rt its lookup runtime (misses counted).
	started time.Time
	vars    *mapping.Vars
	rt      *mapping.Runtime

	// The stages, in the order a record meets them.
	read   *reader
	sel    *selector
	enrich *enricher
	mapper *mapper
	write  *writer
	after  *afterSteps

	mu      sync.Mutex
	counts  Counts
	reasons map[string]int
	writes  map[string]int
	// fatal is the first failure that is the run's rather than a record's
	// (credentials refused, configuration broken); fatalKeys are the
	// records that failed with such a failure, whose outcomes are dropped
	// so the failure costs them no retry attempt.
	fatal     error
	fatalKeys map[string]bool
	// scrub holds each record in flight's classified values.
	scrub scrubbers
	// shared: a branch that SyncGroup feeds its pipeline's one listing.
	shared bool
}

// Sync runs one pipeline once: retries that are due, then the source
// listing from the cursor. Single-record failures are recorded and do not
// fail the run; the run fails when the listing itself cannot be read.
func (r *Runner) Sync(ctx context.Context, pipeline string, opts SyncOptions) (*RunResult, error) {
	if p, ok := r.plan.Pipelines[pipeline]; ok && p.Source.NoListing && opts.Records == nil && len(opts.Keys) == 0 && !r.pushedDue(ctx, pipeline, opts) {
		return nil, fmt.Errorf("%w: %s takes its records from its inbox (%s) only; run the daemon (engine run) to receive deliveries, or preview one with engine dry-run %s --from DELIVERY.json",
			ErrNoListing, pipeline, p.Inbox.Path, pipeline)
	}
	ru, err := r.newRun(ctx, pipeline, opts)
	if err != nil {
		return nil, err
	}
	res := &RunResult{Pipeline: pipeline, RunID: ru.id}
	err = ru.read.start(ctx)
	if err == nil {
		err = ru.drive(ctx, res)
	}
	return ru.finish(ctx, res, err)
}

// newRun builds a run of pipeline and its stages, and records its start.
func (r *Runner) newRun(ctx context.Context, pipeline string, opts SyncOptions) (*run, error) {
	p, ok := r.plan.Pipelines[pipeline]
	if !ok {
		return nil, fmt.Errorf("%w %q (have: %s)", ErrUnknownPipeline, pipeline, strings.Join(r.plan.Order, ", "))
	}
	if r.crashErr != nil {
		return nil, r.crashErr
	}
	if opts.Trigger == "" {
		opts.Trigger = "manual"
	}
	if opts.Fetch != nil {
		// A copy of the pipeline that re-fetches with the given request;
		// the plan is not touched.
		pc := *p
		pc.Source.Get = opts.Fetch
		p = &pc
	}
	ru := &run{r: r, p: p, opts: opts, started: r.clock.Now().UTC(), reasons: map[string]int{}, fatalKeys: map[string]bool{}}
	ru.rt = mapping.NewRuntime(ctx, &apiResolver{r: r})
	ru.vars = &mapping.Vars{Vars: r.plan.Vars, Now: ru.started.Format(time.RFC3339), Runtime: ru.rt}
	var src Source
	var tgt Target
	if r.conns != nil {
		var err error
		if src, err = r.conns.Source(p); err != nil {
			return nil, fmt.Errorf("%s: source: %w", pipeline, err)
		}
		if tgt, err = r.conns.Target(p); err != nil {
			return nil, fmt.Errorf("%s: target: %w", pipeline, err)
		}
	}
	ru.read = &reader{ru: ru, src: src}
	ru.sel = newSelector(ru)
	ru.enrich = &enricher{ru: ru}
	ru.mapper = &mapper{ru: ru}
	ru.write = newWriter(ru, tgt)
	ru.after = &afterSteps{ru: ru}
	if opts.DryRun == nil {
		id, err := r.state.StartRun(ctx, pipeline, r.plan.Hash, opts.Trigger, ru.started)
		if err != nil {
			return nil, fmt.Errorf("start run of %s: %w", pipeline, err)
		}
		ru.id = id
		ru.write.intents.runID = id
	}
	return ru, nil
}

// drive feeds the run its records: given ones (dry-run --from), keys to
// re-fetch (retry, inbox), or the due retries and then the listing.
func (ru *run) drive(ctx context.Context, res *RunResult) error {
	dry := ru.opts.DryRun != nil
	if !dry && !ru.opts.SkipRetries && !ru.opts.Pushed && ru.opts.Records == nil {
		// Pushed records waiting in the queue run from their kept body,
		// whatever else this run reads.
		if err := ru.read.pushedRetries(ctx); err != nil {
			return err
		}
	}
	switch {
	case ru.opts.Records != nil:
		outs, fatal := ru.keep(ru.page(ctx, ru.opts.Records, false))
		if ru.opts.Pushed {
			outs = ru.keepBodies(ctx, ru.opts.Records, outs)
		}
		if !dry {
			if err := ru.commit(ctx, outs, nil); err != nil {
				return err
			}
		}
		return fatal
	case len(ru.opts.Keys) > 0:
		// Keys are asked for by name (engine retry, an inbox): process
		// them even when their version was handled already.
		return ru.read.byKeys(ctx, ru.opts.Keys)
	}
	// Records re-read in the cursor's overlap, or re-listed for a retry,
	// are skipped when their version was handled; a failed record's
	// version is forgotten, so a retry always runs it.
	ru.sel.skipSame = !dry
	if !dry && !ru.opts.SkipRetries {
		if err := ru.read.retries(ctx); err != nil {
			return err
		}
	}
	if ru.p.Source.NoListing || ru.shared {
		// Only its pushed retries ran, or SyncGroup's one listing feeds it.
		return nil
	}
	return ru.read.listing(ctx, res)
}

// finish fills the result and records how the run ended. The run row is
// finished even when ctx is cancelled: a SIGTERM must leave an honest
// record behind.
func (ru *run) finish(ctx context.Context, res *RunResult, err error) (*RunResult, error) {
	ru.mu.Lock()
	res.Counts = ru.counts
	res.Reasons = ru.reasons
	res.Writes = ru.writes
	ru.mu.Unlock()
	if res.Writes == nil {
		res.Writes = map[string]int{}
	}
	res.Misses = ru.rt.Misses()
	res.Counts.LookupMisses = ru.rt.MissesByPolicy()
	res.Duration = ru.r.clock.Now().Sub(ru.started)
	var stop *RunStoppedError
	if errors.As(err, &stop) && stop.Pipeline == ru.p.Name {
		stop.NotProcessed = res.Counts.NotProcessed
	}
	res.Err = err
	if ru.opts.DryRun != nil {
		return res, err
	}
	status, msg := "succeeded", ""
	if err != nil {
		status, msg = "failed", safeError(err)
		if ctx.Err() != nil {
			status = "interrupted"
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	ferr := ru.r.state.FinishRun(fctx, ru.id, status, res.Counts, msg, ru.r.clock.Now().UTC())
	cancel()
	if ferr != nil && err == nil {
		err = ferr
	}
	return res, err
}

func (ru *run) progress(page, total int) {
	if ru.r.Progress == nil {
		return
	}
	ru.mu.Lock()
	c := ru.counts
	c.Notes = maps.Clone(c.Notes)
	ru.mu.Unlock()
	ru.r.Progress(ProgressEvent{Pipeline: ru.p.Name, Page: page, Counts: c, Total: total, Elapsed: ru.r.clock.Now().Sub(ru.started)})
}

// commit records a page's outcomes (and, at the end of a listing, the new
// cursor) in one transaction.
func (ru *run) commit(ctx context.Context, outs []Outcome, cur *string) error {
	return ru.commitWith(ctx, ru.write.batch, outs, cur)
}

// commitWith is commit with the page's writes in pb (the run's batch, or
// one taken from it).
func (ru *run) commitWith(ctx context.Context, pb *pageBatch, outs []Outcome, cur *string) error {
	// A batch target's writes for the page land first, in one transaction;
	// a failed flush turns their outcomes into failures.
	ru.write.flushBatch(ctx, pb, outs)
	pc := PageCommit{RunID: ru.id, Pipeline: ru.p.Name, Outcomes: outs, Cursor: cur, Now: ru.r.clock.Now().UTC(),
		Retry: RetryPolicy{MaxAttempts: ru.p.MaxAttempts, Base: time.Minute, Max: 6 * time.Hour}}
	// The commit must land even if a signal arrived while the page was
	// being written: the writes happened, so their outcomes must be kept.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	ru.r.crash.hit(CrashBeforeCommit)
	if err := ru.r.state.CommitPage(cctx, pc); err != nil {
		return fmt.Errorf("%s: commit page: %w", ru.p.Name, err)
	}
	ru.r.crash.hit(CrashAfterCommit)
	return ctx.Err()
}

// page processes a page's records with bounded concurrency and returns
// their outcomes in input order. What the state knows of the page's
// records is read once, before any of them. With release, each entry of
// records is cleared once its record is done: a listed page's decoded
// records (~4 kB a case) then become garbage as they finish instead of
// all staying live until the last one, while the next page is already
// decoded beside them (listAhead). Callers that read the records
// afterwards (keepBodies) pass false.
func (ru *run) page(ctx context.Context, records []any, release bool) []Outcome {
	ru.sel.newPage(len(records))
	kn, err := ru.known(ctx, ru.sel.keys(ctx, records))
	if err != nil {
		// Without what the state knows, no record can be decided safely.
		outs := make([]Outcome, 0, len(records))
		for _, rec := range records {
			outs = append(outs, ru.fail(ru.sel.keyOf(ctx, rec), "", "state", ClassRetryable, err))
		}
		return outs
	}
	// A few workers take the records in order, rather than a goroutine
	// per record: each record's goroutine grew its stack again (decoding,
	// jq) and was torn down, a few percent of a sync's CPU.
	results := make([][]Outcome, len(records))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(max(ru.p.Concurrency, 1), len(records)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && ru.stopped() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(records) {
					return
				}
				results[i] = ru.record(ctx, records[i], kn)
				if release {
					records[i] = nil
				}
			}
		}()
	}
	wg.Wait()
	if ru.stopped() != nil {
		// Workers take records in order, so those past the last index
		// taken were never started.
		ru.leftUnprocessed(len(records) - min(int(next.Load()), len(records)))
	}
	var outs []Outcome
	for _, rs := range results {
		outs = append(outs, rs...)
	}
	return outs
}

// known reads, in one query of the state, what it remembers of these
// source records and their fanned-out items.
func (ru *run) known(ctx context.Context, keys []string) (*Known, error) {
	kn, err := ru.r.state.Known(ctx, KnownQuery{Pipeline: ru.p.Name, SourceKeys: keys, LinkFrom: ru.write.srcName, LinkTo: ru.write.linkName})
	if err != nil {
		return nil, fmt.Errorf("%s: read state: %w", ru.p.Name, err)
	}
	return &kn, nil
}

// record runs one source record through the stages (select, enrich,
// fan-out, then map, write and after-steps per item) and returns one
// outcome per item, each marked with its source record and, when every
// item was handled, the record's version.
func (ru *run) record(ctx context.Context, rec any, kn *Known) []Outcome {
	ru.r.crash.hit(CrashMidPage)
	if key := ru.sel.key(ctx, rec); key != "" {
		// Errors and log lines about this record are cleaned of its
		// classified values.
		sc := ru.r.plan.Scrubber(rec)
		ru.scrub.put(key, sc)
		defer ru.scrub.drop(key)
		ctx = WithScrubber(ctx, sc)
	}
	s, outs := ru.sel.choose(ctx, rec, kn)
	if s == nil {
		if m, ok := rec.(map[string]any); ok && len(outs) > 0 {
			// A record the filters ended: the after-steps declared for
			// skipped items still hear of it.
			return ru.after.outcomes(ctx, m, ru.deliveryOf(outs[0].RecordKey), outs)
		}
		return outs
	}
	return ru.after.outcomes(ctx, s.rec, s.delivery, ru.stages(ctx, s, kn))
}

// stages runs a selected record through enrich, fan-out, map, write and
// the after-steps of its written items.
func (ru *run) stages(ctx context.Context, s *selected, kn *Known) []Outcome {
	if out, ok := ru.enrich.record(ctx, s); !ok {
		return s.mark([]Outcome{out})
	}
	if len(ru.p.Enrich) > 0 {
		sc := ru.r.plan.Scrubber(s.rec) // with what enrich added
		ru.scrub.put(s.key, sc)
		ctx = WithScrubber(ctx, sc)
	}
	items, out, ok := ru.sel.fanOut(ctx, s)
	if !ok {
		outs := []Outcome{out}
		if out.Reason == "nothing_to_write" {
			// Every item it had before left with it.
			outs = append(outs, ru.write.left(s.key, nil, kn, s.cursor)...)
		}
		return s.mark(outs)
	}
	outs := ru.items(ctx, s, items, kn)
	if ru.p.Each != nil {
		keep := make(map[string]bool, len(items))
		for _, it := range items {
			keep[it.key] = true
		}
		outs = append(outs, ru.write.left(s.key, keep, kn, s.cursor)...)
	}
	return s.mark(outs)
}

// deliveryOf is the webhook delivery the record with source key key came
// in, as $delivery sees it; nil outside an inbox.
func (ru *run) deliveryOf(key string) any {
	if d, ok := ru.opts.Deliveries[key]; ok {
		return d
	}
	return nil
}

// items maps, writes and follows up a record's items in their declared
// order. A target may depend on the order writes arrive in (an upsert that
// keeps the last organisation it was sent), so once an item fails in a way
// that is retried, or its outcome is unknown, the items after it are not
// sent: they wait with it and are retried after it, never before.
func (ru *run) items(ctx context.Context, s *selected, items []item, kn *Known) []Outcome {
	outs := make([]Outcome, 0, len(items))
	for i, it := range items {
		o := ru.item(ctx, s, it, kn)
		outs = append(outs, o)
		if !holdsBack(o) || ru.opts.DryRun != nil {
			continue
		}
		ru.mu.Lock()
		if ru.notProcessedLocked(o.RecordKey, o.Action, o.Link) {
			// Held back by the run's failure, not the item's: they wait
			// for the next run with it, uncharged.
			for _, later := range items[i+1:] {
				ru.fatalKeys[later.key] = true
			}
		}
		ru.mu.Unlock()
		for _, later := range items[i+1:] {
			outs = append(outs, ru.outcome(Decision{RecordKey: later.key, Action: ActionFailed, Reason: "waits_for_item",
				Class: ClassRetryable, Error: "an earlier item of this record failed; this one is sent after it"}, s.cursor, nil))
		}
		break
	}
	return outs
}

// holdsBack reports whether an item's outcome keeps the items after it
// from being sent: a failure that will be retried (a 5xx, a timeout, a
// refused login) or whose write may have reached the target. A refusal
// that a person must look at (a 4xx, a mapping or data problem) does not:
// it is not retried on its own, and holding its siblings back until it
// parks would lose them.
func holdsBack(o Outcome) bool {
	if o.Action != ActionFailed {
		return false
	}
	switch o.Class {
	case ClassPermanent, ClassData:
		return o.Unconfirmed
	}
	return true
}

// item maps one item, writes it and runs its after-steps.
func (ru *run) item(ctx context.Context, s *selected, it item, kn *Known) Outcome {
	v := *ru.vars
	v.Record = s.rec
	v.Delivery = s.delivery
	v.Notes = &mapping.Notes{}
	payload, failed, ok := ru.mapper.item(ctx, s, it, &v)
	if !ok {
		return failed
	}
	notes := v.Notes.Codes()
	v.Payload = payload
	d, w := ru.write.item(ctx, it.key, payload, &v, kn)
	d.Notes = notes
	if d.Action == ActionFailed || d.Action == ActionSkipped {
		return ru.outcome(d, s.cursor, nil)
	}
	link := ru.write.link(it.key, d)
	if (d.Action == ActionCreated || d.Action == ActionUpdated) && ru.opts.DryRun == nil {
		// A dry run wrote nothing, so it has nothing to follow up.
		v.TargetID = d.TargetID
		v.Response = w.Answer
		v.Transaction = w.Transaction
		if err := ru.after.item(ctx, &d, &v); err != nil {
			// The write happened: keep the link, drop the hash so a retry
			// writes again and repeats the after-steps. An asynchronous job
			// the remote reports failed wrote nothing, so there is nothing
			// to link: the retry writes again rather than find the failure.
			fd := ru.failDecision(it.key, "after", ClassOf(err), err)
			fd.TargetID, fd.Notes = d.TargetID, notes
			var pf *PollFailedError
			if errors.As(err, &pf) {
				link = nil
			}
			return ru.outcome(fd, s.cursor, link)
		}
	}
	return ru.outcome(d, s.cursor, link)
}
