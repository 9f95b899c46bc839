package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
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
	// processed: a page boundary, where every earlier page is committed.
	// An error stops the listing there (the daemon's drain on shutdown).
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
	// Fetch, when set, re-fetches Keys with this request in place of
	// source.get (an inbox's trigger.inbox.fetch).
	Fetch *Request
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
	// Unconfirmed: a failed create that may have reached the target.
	Unconfirmed bool
}

// ErrUnknownPipeline is returned for a pipeline name the plan lacks.
var ErrUnknownPipeline = errors.New("unknown pipeline")

type run struct {
	writesMu sync.Mutex
	writes   map[string]int
	r        *Runner
	p        *Pipeline
	opts     SyncOptions
	id       int64
	started  time.Time
	vars     *mapping.Vars
	rt       *mapping.Runtime
	mu       sync.Mutex
	counts   Counts
	reasons  map[string]int
	// seen and seenPrev hold 16-byte digests of the keys read on this
	// page and the one before. A record listed twice in one run because an
	// insert shifted the pages shows up on the next page, which these
	// catch; a repeat further away (the record changed and moved) is
	// handled again, and its link, source version and payload hash make
	// that an update or no write at all. Keeping two pages instead of
	// every key is what keeps memory flat as the listing grows.
	seen     map[[16]byte]struct{}
	seenPrev map[[16]byte]struct{}
	maxSeen  time.Time
	cache    sync.Map // enrich cache: rendered request → body
	srcName  string
	linkName string
	// src and tgt are the pipeline's ports.
	src Source
	tgt Target
	// skipSame: a record whose version was handled already is skipped
	// before enrich.
	skipSame bool
	// fatal is the first failure that is the run's rather than a record's
	// (credentials refused, configuration broken); fatalKeys are the
	// records that failed with such a failure, whose outcomes are dropped
	// so the failure costs them no retry attempt.
	fatal     error
	fatalKeys map[string]bool
}

// Sync runs one pipeline once: retries that are due, then the source
// listing from the cursor. Single-record failures are recorded and do not
// fail the run; the run fails when the listing itself cannot be read.
func (r *Runner) Sync(ctx context.Context, pipeline string, opts SyncOptions) (*RunResult, error) {
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
	ru := &run{r: r, p: p, opts: opts, started: r.clock.Now().UTC(), reasons: map[string]int{}, seen: map[[16]byte]struct{}{},
		srcName: p.Source.Connector, linkName: p.Upsert.LinkSystem, fatalKeys: map[string]bool{}}
	var err error
	if ru.src, err = r.conns.Source(p); err != nil {
		return nil, fmt.Errorf("%s: source: %w", pipeline, err)
	}
	if ru.tgt, err = r.conns.Target(p); err != nil {
		return nil, fmt.Errorf("%s: target: %w", pipeline, err)
	}
	if ru.linkName == "" {
		ru.linkName = p.Upsert.Connector
	}
	res := &RunResult{Pipeline: pipeline}
	dry := opts.DryRun != nil
	if !dry {
		id, err := r.state.StartRun(ctx, pipeline, r.plan.Hash, opts.Trigger, ru.started)
		if err != nil {
			return nil, fmt.Errorf("start run of %s: %w", pipeline, err)
		}
		ru.id = id
		res.RunID = id
	}
	ru.rt = mapping.NewRuntime(ctx, &apiResolver{r: r})

	cursor, err := ru.startCursor(ctx)
	if err == nil {
		ru.vars = &mapping.Vars{Vars: r.plan.Vars, Cursor: cursor, Now: ru.started.Format(time.RFC3339), Runtime: ru.rt}
		switch {
		case opts.Records != nil:
			outs, fatal := ru.keep(ru.page(ctx, opts.Records))
			if !dry {
				err = ru.commit(ctx, outs, nil)
			}
			if err == nil {
				err = fatal
			}
		case len(opts.Keys) > 0:
			// Keys are asked for by name (engine retry, an inbox): process
			// them even when their version was handled already.
			err = ru.byKeys(ctx, opts.Keys)
		default:
			// Records re-read in the cursor's overlap, or re-listed for a
			// retry, are skipped when their version was handled; a failed
			// record's version is forgotten, so a retry always runs it.
			ru.skipSame = !dry
			if !dry && !opts.SkipRetries {
				err = ru.retries(ctx)
			}
			if err == nil {
				err = ru.listing(ctx, res)
			}
		}
	}
	res.Counts = ru.counts
	res.Reasons = ru.reasons
	res.Misses = ru.rt.Misses()
	res.Writes = ru.writeCounts()
	res.Duration = r.clock.Now().Sub(ru.started)
	res.Err = err
	if !dry {
		status, msg := "succeeded", ""
		if err != nil {
			status, msg = "failed", safeError(err)
			if ctx.Err() != nil {
				status = "interrupted"
			}
		}
		// The run row is finished even when ctx is cancelled: a SIGTERM
		// must leave an honest record behind.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		ferr := r.state.FinishRun(fctx, ru.id, status, ru.counts, msg, r.clock.Now().UTC())
		cancel()
		if ferr != nil && err == nil {
			err = ferr
		}
	}
	return res, err
}

// startCursor renders the cursor this run reads from: the stored value (or
// the initial one), minus the overlap.
func (ru *run) startCursor(ctx context.Context) (string, error) {
	c := ru.p.Source.Cursor
	if c == nil {
		return "", nil
	}
	var at time.Time
	if ru.opts.Since != "" {
		t, err := parseCursor(ru.opts.Since)
		if err != nil {
			return "", fmt.Errorf("--since: %w", err)
		}
		at = t
	} else {
		val, ok, err := ru.r.state.Cursor(ctx, ru.p.Name)
		if err != nil {
			return "", fmt.Errorf("read cursor of %s: %w", ru.p.Name, err)
		}
		at = c.Initial
		if ok {
			t, err := parseCursor(val)
			if err != nil {
				return "", fmt.Errorf("stored cursor of %s is not a time: %w", ru.p.Name, err)
			}
			at = t.Add(-c.Overlap)
		}
	}
	return renderCursor(c, at), nil
}

func renderCursor(c *Cursor, at time.Time) string {
	at = at.UTC()
	if c.DayStart {
		at = time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	}
	return at.Format(c.Layout)
}

func parseCursor(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time", s)
}

// nextCursor is where the next run starts: the greatest value seen, capped
// at this run's start (a record stamped in the future must not push the
// cursor past records not yet written), or the run's start.
func (ru *run) nextCursor() *string {
	c := ru.p.Source.Cursor
	if c == nil {
		return nil
	}
	var t time.Time
	switch c.Next {
	case "run_start":
		t = ru.started
	default:
		ru.mu.Lock()
		t = ru.maxSeen
		ru.mu.Unlock()
		if t.IsZero() {
			return nil // nothing seen: keep the cursor where it is
		}
		if t.After(ru.started) {
			t = ru.started
		}
	}
	s := FormatCursor(t)
	return &s
}

// listing reads the source page by page and commits each page.
func (ru *run) listing(ctx context.Context, res *RunResult) error {
	read := 0
	last := 0
	flush := func(pg *Page, final bool) error {
		outs, fatal := ru.keep(ru.page(ctx, pg.Records))
		if ru.opts.DryRun != nil {
			if !final {
				ru.progress(pg.Number, pg.Total)
			}
			return fatal
		}
		var cur *string
		if final && fatal == nil {
			cur = ru.nextCursor()
			res.Cursor = deref(cur)
		}
		if err := ru.commit(ctx, outs, cur); err != nil {
			return err
		}
		if !final {
			ru.progress(pg.Number, pg.Total)
		}
		return fatal
	}
	err := ru.src.List(ctx, ru.vars, func(pg *Page) error {
		if ru.r.BeforePage != nil {
			if err := ru.r.BeforePage(ctx); err != nil {
				return err
			}
		}
		if ru.opts.Limit > 0 && read+len(pg.Records) > ru.opts.Limit {
			pg.Records = pg.Records[:ru.opts.Limit-read]
		}
		read += len(pg.Records)
		last = pg.Number
		// Each page commits as soon as it is done, so only one page is ever
		// held in memory; the cursor moves in a final commit once the whole
		// listing has been read (a crash before it re-reads the listing,
		// which the payload hashes make harmless).
		if err := flush(pg, false); err != nil {
			return err
		}
		if ru.opts.Limit > 0 && read >= ru.opts.Limit {
			return errStopListing
		}
		return nil
	})
	if errors.Is(err, errStopListing) {
		err = nil
	}
	if fatal := ru.stopped(); fatal != nil {
		return fatal
	}
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%s: read source: %w", ru.p.Name, err)
	}
	return flush(&Page{Number: last + 1, Total: -1}, ru.opts.Limit == 0)
}

var errStopListing = errors.New("stop listing")

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (ru *run) progress(page, total int) {
	if ru.r.Progress == nil {
		return
	}
	ru.mu.Lock()
	c := ru.counts
	ru.mu.Unlock()
	ru.r.Progress(ProgressEvent{Pipeline: ru.p.Name, Page: page, Counts: c, Total: total, Elapsed: ru.r.clock.Now().Sub(ru.started)})
}

func (ru *run) commit(ctx context.Context, outs []Outcome, cur *string) error {
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

// runFatal reports whether a failure is the run's rather than the record's:
// credentials refused after the connector's one re-login, or configuration
// no record can fix (a missing secret, a connector that is not there). Such
// a failure stops the run instead of costing every record a retry attempt.
// A 403 stays the record's: servers answer it for one record outside the
// account's scope.
func runFatal(class Class, err error) bool {
	switch class {
	case ClassConfig:
		return true
	case ClassAuth:
		var re *RemoteError
		return !errors.As(err, &re) || re.Status != 403
	}
	return false
}

// stopped returns the run's fatal failure, if one happened.
func (ru *run) stopped() error {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	return ru.fatal
}

// keep drops the outcomes of records that failed with the run's fatal
// failure, so they are neither counted as an attempt nor parked; they are
// read again by the next run, since the cursor does not move. A failure
// that carries a link is kept: its write happened, and the ledger must
// learn the target's id. keep returns the fatal failure, if any.
func (ru *run) keep(outs []Outcome) ([]Outcome, error) {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.fatal == nil {
		return outs, nil
	}
	kept := outs[:0]
	for _, o := range outs {
		if o.Action == ActionFailed && ru.fatalKeys[o.RecordKey] && o.Link == nil {
			continue
		}
		kept = append(kept, o)
	}
	return kept, ru.fatal
}

// page processes a page's records with bounded concurrency and returns
// their outcomes in input order.
func (ru *run) page(ctx context.Context, records []any) []Outcome {
	ru.mu.Lock()
	ru.seenPrev, ru.seen = ru.seen, make(map[[16]byte]struct{}, len(records))
	ru.mu.Unlock()
	results := make([][]Outcome, len(records))
	kn, err := ru.known(ctx, ru.pageKeys(ctx, records))
	if err != nil {
		// Without what the state knows, no record can be decided safely.
		outs := make([]Outcome, 0, len(records))
		for _, rec := range records {
			outs = append(outs, ru.fail(ru.keyOf(ctx, rec), "", "state", ClassRetryable, err))
		}
		return outs
	}
	n := ru.p.Concurrency
	if n < 1 {
		n = 1
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, rec := range records {
		if ctx.Err() != nil || ru.stopped() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, rec any) {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = ru.record(ctx, rec, kn)
		}(i, rec)
	}
	wg.Wait()
	var outs []Outcome
	for _, rs := range results {
		outs = append(outs, rs...)
	}
	return outs
}

// keyOf is a record's source key, or a stand-in naming its content's hash
// for a record without one.
func (ru *run) keyOf(ctx context.Context, rec any) string {
	if kv, err := ru.p.Source.Key.One(ctx, rec, ru.vars); err == nil {
		if k := ScalarString(kv); k != "" {
			return k
		}
	}
	return fmt.Sprintf("unkeyed-%s", shortHash(rec))
}

// pageKeys lists the source keys of a page's records.
func (ru *run) pageKeys(ctx context.Context, records []any) []string {
	keys := make([]string, 0, len(records))
	for _, rec := range records {
		keys = append(keys, ru.keyOf(ctx, rec))
	}
	return keys
}

// known reads, in one query of the state, what it remembers of these
// source records and their fanned-out items.
func (ru *run) known(ctx context.Context, keys []string) (*Known, error) {
	kn, err := ru.r.state.Known(ctx, KnownQuery{Pipeline: ru.p.Name, SourceKeys: keys, LinkFrom: ru.srcName, LinkTo: ru.linkName})
	if err != nil {
		return nil, fmt.Errorf("%s: read state: %w", ru.p.Name, err)
	}
	return &kn, nil
}

// byKeys re-fetches each key with source.get and processes it.
func (ru *run) byKeys(ctx context.Context, keys []string) error {
	if ru.p.Source.Get == nil {
		return fmt.Errorf("%s: source has no get request, so single records cannot be re-fetched; run a full sync instead", ru.p.Name)
	}
	return ru.refetchAll(ctx, keys)
}

// refetchChunk bounds how many re-fetched records share one commit.
const refetchChunk = 100

// refetchAll re-fetches keys one by one and commits every refetchChunk of
// them, so a long retry keeps what it did if it is interrupted.
func (ru *run) refetchAll(ctx context.Context, keys []string) error {
	var outs []Outcome
	flush := func() error {
		kept, fatal := ru.keep(outs)
		outs = nil
		if ru.opts.DryRun != nil {
			return fatal
		}
		if err := ru.commit(ctx, kept, nil); err != nil {
			return err
		}
		return fatal
	}
	for i, k := range keys {
		if ctx.Err() != nil || ru.stopped() != nil {
			break
		}
		outs = append(outs, ru.refetch(ctx, k)...)
		if (i+1)%refetchChunk == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (ru *run) refetch(ctx context.Context, key string) []Outcome {
	v := *ru.vars
	v.Key = key
	rec, err := ru.src.Get(ctx, &v)
	if errors.Is(err, ErrNotFound) {
		// The source record is gone: nothing left to sync.
		return []Outcome{ru.outcome(Decision{RecordKey: key, Action: ActionSkipped, Reason: "source_gone"}, "", nil)}
	}
	if err != nil {
		return []Outcome{ru.fail(key, "", "source_get", ClassOf(err), err)}
	}
	kn, err := ru.known(ctx, []string{key})
	if err != nil {
		return []Outcome{ru.fail(key, "", "state", ClassRetryable, err)}
	}
	return ru.record(ctx, rec, kn)
}

// retries re-processes due records from the queue.
func (ru *run) retries(ctx context.Context) error {
	due, err := ru.r.state.DueRetries(ctx, ru.p.Name, ru.started, 10000)
	if err != nil {
		return fmt.Errorf("%s: read retry queue: %w", ru.p.Name, err)
	}
	if len(due) == 0 {
		return nil
	}
	// Items of a fan-out share their record: re-fetch each record once.
	keys := map[string]bool{}
	var order []string
	for _, it := range due {
		k := it.RecordKey
		if i := strings.IndexByte(k, '#'); i >= 0 {
			k = k[:i]
		}
		if !keys[k] {
			keys[k] = true
			order = append(order, k)
		}
	}
	if ru.p.Source.Get != nil {
		return ru.refetchAll(ctx, order)
	}
	// Without get, the main listing re-reads queued records only when they
	// fall inside it; the cursor is wound back to the oldest due record.
	if c := ru.p.Source.Cursor; c != nil {
		oldest := time.Time{}
		for _, it := range due {
			if t, err := parseCursor(it.CursorValue); err == nil && (oldest.IsZero() || t.Before(oldest)) {
				oldest = t
			}
		}
		if !oldest.IsZero() {
			cur, _ := parseCursor(ru.vars.Cursor)
			if oldest.Add(-c.Overlap).Before(cur) {
				ru.vars.Cursor = renderCursor(c, oldest.Add(-c.Overlap))
			}
		}
	}
	return nil
}

// record runs one source record through every stage and returns one
// outcome per item written (one, or one per fanned-out item), each marked
// with its source record and, when every item was handled, the record's
// version.
func (ru *run) record(ctx context.Context, rec any, kn *Known) []Outcome {
	ru.r.crash.hit(CrashMidPage)
	outs, key, version := ru.process(ctx, rec, kn)
	if key == "" {
		return outs
	}
	for _, o := range outs {
		switch o.Action {
		case ActionCreated, ActionUpdated, ActionUnchanged:
		default:
			version = ""
		}
	}
	for i := range outs {
		outs[i].SourceKey, outs[i].SourceVersion = key, version
	}
	return outs
}

// sourceVersion identifies one version of a source record as this spec
// handles it: the source's updated value and the spec hash, hashed, so the
// state holds no time from a case and a spec change makes every record new.
func (ru *run) sourceVersion(ctx context.Context, m map[string]any) string {
	u := ru.p.Source.Updated
	if u == nil {
		return ""
	}
	v, err := u.One(ctx, m, ru.vars)
	if err != nil || ScalarString(v) == "" {
		return ""
	}
	return shortHash([]string{ScalarString(v), ru.r.plan.Hash})
}

// process is record's body: it returns the outcomes, the record's key ("" for
// a record without one) and its version ("" when unknown).
func (ru *run) process(ctx context.Context, rec any, kn *Known) (outs []Outcome, key, version string) {
	p := ru.p
	keyV, err := p.Source.Key.One(ctx, rec, ru.vars)
	if err == nil {
		key = ScalarString(keyV)
	}
	if key == "" {
		return []Outcome{ru.fail(fmt.Sprintf("unkeyed-%s", shortHash(rec)), "", "no_key", ClassData, fmt.Errorf("source.key yields no value"))}, "", ""
	}
	cursorVal := ""
	if p.Source.Cursor != nil && p.Source.Cursor.Field != nil {
		if v, err := p.Source.Cursor.Field.One(ctx, rec, ru.vars); err == nil {
			if s, ok := v.(string); ok {
				cursorVal = s
				if t, err := parseCursor(s); err == nil {
					ru.mu.Lock()
					if t.After(ru.maxSeen) {
						ru.maxSeen = t
					}
					ru.mu.Unlock()
				}
			}
		}
	}
	if cursorVal == "" && p.Source.Cursor != nil {
		// A cursor with no per-record field (next: run_start): the record
		// was read because it changed after this run's cursor, so a retry
		// winds the listing back to here to read it again.
		cursorVal = ru.vars.Cursor
	}
	ru.mu.Lock()
	digest := keyDigest(key)
	_, dup := ru.seen[digest]
	if !dup {
		_, dup = ru.seenPrev[digest]
	}
	ru.seen[digest] = struct{}{}
	ru.counts.Read++
	ru.mu.Unlock()
	if dup {
		// The same record twice in one listing (an insert shifted the
		// pages): it was handled once already.
		return nil, "", ""
	}
	m, _ := rec.(map[string]any)
	if m == nil {
		return []Outcome{ru.fail(key, cursorVal, "not_an_object", ClassData, fmt.Errorf("source record is not an object"))}, key, version
	}
	// Filters.
	env := mapping.ExprEnvFor(m, ru.vars)
	for _, f := range p.Filters {
		ok, err := f.Expr.Bool(env)
		if err != nil {
			return []Outcome{ru.fail(key, cursorVal, "filter_error", ClassData, fmt.Errorf("filter %s (%s): %w", f.Reason, f.Pos, err))}, key, version
		}
		if !ok {
			return []Outcome{ru.outcome(Decision{RecordKey: key, Action: ActionSkipped, Reason: f.Reason}, cursorVal, nil)}, key, version
		}
	}
	// A record re-read in the overlap window (or a re-listing) whose
	// version was handled already: skip it before any request.
	version = ru.sourceVersion(ctx, m)
	if version != "" && ru.skipSame {
		if old, ok := kn.Versions[key]; ok && old == version {
			return []Outcome{ru.outcome(Decision{RecordKey: key, Action: ActionUnchanged, Reason: "same_source_version"}, cursorVal, nil)}, key, version
		}
	}
	// Enrich.
	for _, e := range p.Enrich {
		if e.When != nil {
			ok, err := e.When.Bool(mapping.ExprEnvFor(m, ru.vars))
			if err != nil {
				return []Outcome{ru.fail(key, cursorVal, "enrich_"+e.Name, ClassData, fmt.Errorf("enrich %s when: %w", e.Name, err))}, key, version
			}
			if !ok {
				continue
			}
		}
		val, err := ru.enrich(ctx, &e, m)
		if err != nil {
			switch e.OnError {
			case "skip":
				return []Outcome{ru.outcome(Decision{RecordKey: key, Action: ActionSkipped, Reason: "enrich_" + e.Name}, cursorVal, nil)}, key, version
			case "null":
				val = nil
			default:
				return []Outcome{ru.fail(key, cursorVal, "enrich_"+e.Name, ClassOf(err), fmt.Errorf("enrich %s: %w", e.Name, err))}, key, version
			}
		}
		m[e.As] = val
	}
	// Fan out.
	type item struct {
		key string
		v   any
	}
	items := []item{{key: key, v: m}}
	if p.Each != nil {
		vals, err := p.Each.JQ.All(ctx, m, ru.vars)
		if err != nil {
			return []Outcome{ru.fail(key, cursorVal, "each", ClassData, fmt.Errorf("each: %w", err))}, key, version
		}
		if len(vals) == 1 {
			if arr, ok := vals[0].([]any); ok {
				vals = arr
			}
		}
		items = items[:0]
		for _, v := range vals {
			kv, err := p.Each.Key.One(ctx, v, ru.vars)
			if err != nil || ScalarString(kv) == "" {
				return []Outcome{ru.fail(key, cursorVal, "each_key", ClassData, fmt.Errorf("each.key yields no value"))}, key, version
			}
			items = append(items, item{key: key + "#" + ScalarString(kv), v: v})
		}
		if len(items) == 0 {
			return []Outcome{ru.outcome(Decision{RecordKey: key, Action: ActionSkipped, Reason: "nothing_to_write"}, cursorVal, nil)}, key, version
		}
	}
	outs = make([]Outcome, 0, len(items))
	for _, it := range items {
		outs = append(outs, ru.item(ctx, it.key, cursorVal, m, it.v, kn))
	}
	return outs, key, version
}

// item maps, upserts and runs after-steps for one item.
func (ru *run) item(ctx context.Context, key, cursorVal string, rec map[string]any, input any, kn *Known) Outcome {
	p := ru.p
	v := *ru.vars
	v.Record = rec
	payload, err := p.Map.Apply(ctx, input, &v)
	if err != nil {
		return ru.mapFailure(key, cursorVal, err)
	}
	v.Payload = payload
	d, txnV, resp := ru.upsert(ctx, key, payload, &v, kn)
	if d.Action == ActionFailed || d.Action == ActionSkipped {
		return ru.outcome(d, cursorVal, nil)
	}
	var link *Link
	if d.TargetID != "" && d.Action != ActionUnchanged {
		link = &Link{SystemA: ru.srcName, IDA: key, SystemB: ru.linkName, IDB: d.TargetID, Pipeline: p.Name}
	}
	if (d.Action == ActionCreated || d.Action == ActionUpdated) && ru.opts.DryRun == nil {
		// A dry run wrote nothing, so it has nothing to follow up.
		v.TargetID = d.TargetID
		v.Response = resp
		v.Transaction = txnV
		if err := ru.after(ctx, &d, &v); err != nil {
			// The write happened: keep the link, drop the hash so a retry
			// writes again and repeats the after-steps. An asynchronous job
			// the remote reports failed wrote nothing, so there is nothing
			// to link: the retry writes again rather than find the failure.
			fd := ru.failDecision(key, "after", ClassOf(err), err)
			fd.TargetID = d.TargetID
			var pf *PollFailedError
			if errors.As(err, &pf) {
				link = nil
			}
			return ru.outcome(fd, cursorVal, link)
		}
	}
	return ru.outcome(d, cursorVal, link)
}

func (ru *run) mapFailure(key, cursorVal string, err error) Outcome {
	var skip *mapping.SkipError
	if errors.As(err, &skip) {
		return ru.outcome(Decision{RecordKey: key, Action: ActionSkipped, Reason: skip.Reason}, cursorVal, nil)
	}
	var miss *mapping.MissError
	if errors.As(err, &miss) {
		d := ru.failDecision(key, "lookup_miss_"+miss.Lookup, ClassData, redactMiss(err, miss))
		if ru.opts.DryRun != nil {
			d.MissLookup, d.MissKey = miss.Lookup, miss.Key
		}
		return ru.outcome(d, cursorVal, nil)
	}
	var le *mapping.LookupError
	if errors.As(err, &le) {
		return ru.fail(key, cursorVal, "lookup_error_"+le.Lookup, ClassOf(le.Err), err)
	}
	var fe *mapping.FailError
	if errors.As(err, &fe) {
		return ru.fail(key, cursorVal, fe.Reason, ClassData, err)
	}
	return ru.fail(key, cursorVal, "map_error", ClassData, err)
}

// redactMiss keeps the lookup's name and the key's shape but not the key:
// keys such as a national id are personal data.
func redactMiss(err error, miss *mapping.MissError) error {
	msg := err.Error()
	msg = strings.Replace(msg, fmt.Sprintf("%q", miss.Key), fmt.Sprintf("(%d characters)", len(miss.Key)), 1)
	return errors.New(msg)
}

// upsert decides and performs the write for one payload.
func (ru *run) upsert(ctx context.Context, key string, payload map[string]any, v *mapping.Vars, kn *Known) (Decision, any, any) {
	p := ru.p
	u := p.Upsert
	d := Decision{Pipeline: p.Name, RecordKey: key, Payload: payload}
	bkeyV, err := u.Key.One(ctx, payload, v)
	if err != nil {
		return ru.failDecision(key, "key_error", ClassData, fmt.Errorf("upsert.key: %w", err)), nil, nil
	}
	bkey := ScalarString(bkeyV)
	if bkey == "" && u.KeyFallback != nil {
		if fv, err := u.KeyFallback.One(ctx, payload, v); err == nil {
			bkey = ScalarString(fv)
		}
	}
	hash := payloadHash(payload)
	dry := ru.opts.DryRun != nil
	last, haveLast := kn.Records[key]
	if haveLast && u.Unchanged == "hash" && last.PayloadHash == hash {
		d.Action, d.TargetID, d.Reason = ActionUnchanged, last.TargetID, "same_payload"
		return d, nil, nil
	}
	v.Key = bkey
	if haveLast && u.Mode == "create_only" {
		// Written before (its id may be unknown: a create that returned
		// none): create_only never writes it again.
		d.Action, d.TargetID, d.Reason = ActionUnchanged, last.TargetID, "exists"
		return d, nil, nil
	}
	// Find the target: the link ledger first, then a query by key.
	targetID := ""
	if haveLast && last.TargetID != "" {
		targetID = last.TargetID
	} else if id, ok := kn.Links[key]; ok {
		targetID = id
	}
	// A create recorded but never committed: a crash (or a timeout after
	// sending) hid whether it reached the target.
	intent := ""
	if targetID == "" && !dry {
		intent = kn.Intents[key]
	}
	var target any
	found := false
	if u.Find != nil && (targetID == "" || dry) {
		if bkey == "" {
			// An empty key would match everything: never search with it.
			return ru.failDecision(key, "empty_key", ClassData, fmt.Errorf("upsert key is empty; refusing to search the target with it")), nil, nil
		}
		m, err := ru.tgt.Find(ctx, payload, v)
		if err != nil {
			return ru.failDecision(key, "find", ClassOf(err), err), nil, nil
		}
		if m.Count > 1 {
			return ru.failDecision(key, "ambiguous_match", ClassPermanent, fmt.Errorf("%d target records match the key; not choosing one", m.Count)), nil, nil
		}
		if m.Count == 1 {
			targetID, target, found = m.ID, m.Record, true
		}
	}
	switch {
	case intent != "" && intent == hash && found:
		// The create of this very payload reached the target before the
		// crash: record it, do not send it again.
		d.Action, d.TargetID, d.Reason = ActionCreated, targetID, "write_confirmed"
		return withHash(d, hash, nil), nil, nil
	case intent != "" && targetID == "" && u.Find == nil && !u.Idempotent:
		fd := ru.failDecision(key, "write_unconfirmed", ClassPermanent, fmt.Errorf(
			"a create of this record may have reached %s before the engine stopped; with no upsert.find to check and a create not declared idempotent, sending it again could duplicate it: check the target by hand", u.Connector))
		fd.Unconfirmed = true
		return fd, nil, nil
	}
	d.Before = target
	v.TargetID, v.Target = nilIfEmpty(targetID), target

	switch {
	case targetID != "" && u.Mode == "create_only":
		d.Action, d.TargetID, d.Reason = ActionUnchanged, targetID, "exists"
		return d, nil, nil
	case targetID == "" && u.Mode == "update_only":
		d.Action, d.Reason = ActionSkipped, "target_not_found"
		return d, nil, nil
	case targetID != "" && u.Update != nil:
		d.Action = ActionUpdated
	case u.Create != nil:
		d.Action = ActionCreated
		if targetID != "" || haveLast {
			d.Action = ActionUpdated // an upsert endpoint updating what it has
		}
	default:
		d.Action, d.Reason = ActionSkipped, "no_write_for_state"
		return d, nil, nil
	}
	update := d.Action == ActionUpdated
	d.Request, err = ru.tgt.Preview(ctx, update, payload, v)
	if err != nil {
		return ru.failDecision(key, "request", ClassData, err), nil, nil
	}
	d.TargetID = targetID
	d.Reason = "payload_changed"
	if d.Action == ActionCreated {
		d.Reason = "new"
	}
	if dry {
		if targetID == "" && d.Action == ActionUpdated {
			d.Reason = "upsert_endpoint"
		}
		if target != nil && isSubset(payload, target) {
			d.Action, d.Reason, d.Request = ActionUnchanged, "target_has_values", nil
		}
		return d, nil, nil
	}
	// Record the create before it leaves, so a crash before this page
	// commits cannot hide it (an upsert endpoint with no find needs no
	// record: sending it again is safe by declaration).
	recorded := false
	if targetID == "" && !(u.Idempotent && u.Find == nil) {
		in := []Intent{{Pipeline: p.Name, RecordKey: key, PayloadHash: hash}}
		if err := ru.r.state.BeginCreates(ctx, ru.id, ru.r.clock.Now().UTC(), in); err != nil {
			return ru.failDecision(key, "state", ClassRetryable, err), nil, nil
		}
		recorded = true
	}
	var w Written
	if update {
		w, err = ru.tgt.Update(ctx, payload, v)
	} else {
		w, err = ru.tgt.Create(ctx, payload, v)
	}
	var notOK *NotOKError
	if err == nil || errors.As(err, &notOK) {
		ru.r.crash.hit(CrashAfterWrite)
	}
	if err != nil {
		fd := ru.failDecision(key, reasonFor(err), ClassOf(err), err)
		// The connector knows whether the request left: a run stopped by a
		// refused login or a signal before sending must not leave the
		// record flagged for a person to check.
		fd.Unconfirmed = recorded && MaybeApplied(err)
		if recorded && !fd.Unconfirmed {
			// Best effort: the page commit clears it too, if it comes.
			_ = ru.r.state.AbandonCreate(context.WithoutCancel(ctx), p.Name, key)
		}
		return fd, nil, nil
	}
	ru.countWrite(u.Connector)
	d.Reason = ""
	if d.Action == ActionCreated && w.ID != "" {
		d.TargetID = w.ID
	}
	if d.TargetID == "" && u.Find == nil {
		// An upsert endpoint keyed on the business key: the key is the
		// only id there is. With a find, an id the create did not return
		// stays unknown, and the next write finds it rather than sending
		// the key where the target expects its own id.
		d.TargetID = bkey
	}
	return withHash(d, hash, w.Transaction), w.Transaction, w.Answer
}

// withHash carries the payload hash and transaction to the outcome.
func withHash(d Decision, hash string, txn any) Decision {
	d.Error = ""
	d.Class = ""
	d.Transaction = ScalarString(txn)
	d.PayloadHash = hash
	return d
}

// after runs the after-steps of a written item.
func (ru *run) after(ctx context.Context, d *Decision, v *mapping.Vars) error {
	for _, a := range ru.p.After {
		if a.When != nil {
			env := mapping.ExprEnvFor(v.Record, v)
			env.Action = string(d.Action)
			ok, err := a.When.Bool(env)
			if err != nil {
				return fmt.Errorf("after %s when: %w", a.Name, err)
			}
			if !ok {
				continue
			}
		}
		if err := ru.afterStep(ctx, &a, v); err != nil {
			if a.OnError == "ignore" {
				ru.r.log.Warn("after-step failed; ignored as declared", "pipeline", ru.p.Name, "step", a.Name, "error", safeError(err))
				continue
			}
			return fmt.Errorf("after %s: %w", a.Name, err)
		}
	}
	return nil
}

func (ru *run) afterStep(ctx context.Context, a *After, v *mapping.Vars) error {
	caller, err := ru.r.conns.Caller(a.Connector)
	if err != nil {
		return err
	}
	ans, err := caller.Call(ctx, &a.Request, v.Payload, v, CallOptions{Label: ru.p.Name + "/after/" + a.Name, Write: true, Check: &a.Check})
	if err != nil {
		return err
	}
	if a.Poll == nil {
		ru.countWrite(a.Connector)
	}
	if a.Transaction != nil {
		tv, err := a.Transaction.One(ctx, ans.Body, v)
		if err != nil || ScalarString(tv) == "" {
			return fmt.Errorf("no transaction id in the response")
		}
		v.Transaction = tv
	}
	if a.Poll != nil {
		return ru.poll(ctx, caller, a, v)
	}
	return nil
}

// RunStoppedError is a run stopped by a failure that is not one record's:
// credentials refused or configuration broken. The records it hit are not
// charged a retry attempt; they are read again once it is fixed.
type RunStoppedError struct {
	Pipeline string
	Class    Class
	Err      error
}

func (e *RunStoppedError) Error() string {
	what := "configuration problem"
	if e.Class == ClassAuth {
		what = "credentials refused"
	}
	return fmt.Sprintf("%s: run stopped, %s (no record was charged a retry attempt): %s", e.Pipeline, what, safeError(e.Err))
}

func (e *RunStoppedError) Unwrap() error { return e.Err }

// NotOKError is a successful (2xx) answer whose body reports a refusal:
// the request's ok program did not yield true (e.g. a 200 whose per-item
// Status is Failed).
type NotOKError struct {
	Method, Path string
	Status       int
	// Reason is what the request's refusal program read from the answer.
	Reason string
}

func (e *NotOKError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s %s: status %d, but the answer reports a failure: %s", e.Method, e.Path, e.Status, e.Reason)
	}
	return fmt.Sprintf("%s %s: status %d, but the answer reports a failure (ok does not hold)", e.Method, e.Path, e.Status)
}

// FailureClass: the remote refused the request, as with a 4xx.
func (e *NotOKError) FailureClass() Class { return ClassPermanent }

// Judge judges a request's successful answer: nil when there is no ok
// program or it holds, else a NotOKError with the reason the refusal
// program reads. Connectors call it with the request they sent.
func (c AnswerCheck) Judge(ctx context.Context, body any, v *mapping.Vars, method, path string, status int) error {
	if c.OK == nil {
		return nil
	}
	if got, err := c.OK.One(ctx, body, v); err == nil && got == true {
		return nil
	}
	e := &NotOKError{Method: method, Path: path, Status: status}
	if c.Refusal != nil {
		if got, err := c.Refusal.One(ctx, body, v); err == nil {
			e.Reason = refusalText(got)
		}
	}
	return e
}

// PollFailedError is an asynchronous job the remote side reports failed.
type PollFailedError struct{ State string }

func (e *PollFailedError) Error() string { return "remote job ended " + e.State }

// FailureClass: a failed remote job is retried on a later run.
func (e *PollFailedError) FailureClass() Class { return ClassRetryable }

func (ru *run) poll(ctx context.Context, caller Caller, a *After, v *mapping.Vars) error {
	po := a.Poll
	deadline := ru.r.clock.Now().Add(po.Timeout)
	for attempt := 0; ; attempt++ {
		ans, err := caller.Call(ctx, &po.Request, v.Payload, v, CallOptions{Label: ru.p.Name + "/poll/" + a.Name})
		if err != nil {
			return err
		}
		sv, err := po.Status.One(ctx, ans.Body, v)
		if err != nil {
			return fmt.Errorf("poll status: %w", err)
		}
		state := ScalarString(sv)
		switch {
		case po.Done[state]:
			return nil
		case po.Failed[state]:
			return &PollFailedError{State: state}
		}
		// Unknown states count as still pending.
		if !ru.r.clock.Now().Before(deadline) {
			return &RemoteError{Class: ClassRetryable, Msg: "poll " + a.Name + " timed out in state " + state}
		}
		if err := ru.r.Sleep(ctx, po.Interval); err != nil {
			return err
		}
	}
}

// enrich performs one enrich request for a record.
func (ru *run) enrich(ctx context.Context, e *Enrich, rec map[string]any) (any, error) {
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
		b, _ := json.Marshal(pv)
		cacheKey = e.Name + string(b)
		if v, ok := ru.cache.Load(cacheKey); ok {
			return v, nil
		}
	}
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
	if e.Cache {
		ru.cache.Store(cacheKey, out)
	}
	return out, nil
}

func (ru *run) fail(key, cursorVal, reason string, class Class, err error) Outcome {
	return ru.outcome(ru.failDecision(key, reason, class, err), cursorVal, nil)
}

func (ru *run) failDecision(key, reason string, class Class, err error) Decision {
	if runFatal(class, err) {
		ru.mu.Lock()
		ru.fatalKeys[key] = true
		if ru.fatal == nil {
			ru.fatal = &RunStoppedError{Pipeline: ru.p.Name, Class: class, Err: err}
		}
		ru.mu.Unlock()
	}
	return Decision{Pipeline: ru.p.Name, RecordKey: key, Action: ActionFailed, Reason: reason, Class: class, Error: safeError(err)}
}

// outcome counts a decision, hands it to dry-run, and turns it into an
// outcome for the state.
func (ru *run) outcome(d Decision, cursorVal string, link *Link) Outcome {
	d.Pipeline = ru.p.Name
	ru.mu.Lock()
	ru.counts.Add(d.Action)
	if d.Action == ActionSkipped || d.Action == ActionFailed {
		ru.reasons[d.Reason]++
	}
	ru.mu.Unlock()
	if ru.opts.DryRun != nil {
		ru.opts.DryRun(d)
	}
	o := Outcome{RecordKey: d.RecordKey, Action: d.Action, Reason: d.Reason, Error: d.Error, Class: d.Class,
		TargetID: d.TargetID, Transaction: d.Transaction, PayloadHash: d.PayloadHash, CursorValue: cursorVal, Link: link,
		Unconfirmed: d.Unconfirmed, At: ru.r.clock.Now().UTC()}
	if d.Action == ActionUnchanged && o.PayloadHash == "" {
		// Keep the record's hash current so the next run stays quiet.
		if p, ok := d.Payload.(map[string]any); ok {
			o.PayloadHash = payloadHash(p)
		}
	}
	if d.Action == ActionFailed {
		// Warn, so alerting on warnings sees a record that needs a person.
		ru.r.log.Warn("record failed", "pipeline", ru.p.Name, "record", d.RecordKey, "reason", d.Reason, "class", string(d.Class), "error", d.Error)
	}
	return o
}

func reasonFor(err error) string {
	var re *RemoteError
	if errors.As(err, &re) {
		if re.Status != 0 {
			return fmt.Sprintf("http_%d", re.Status)
		}
		if re.MaybeApplied {
			return "write_unconfirmed"
		}
		return "transport"
	}
	var notOK *NotOKError
	if errors.As(err, &notOK) {
		return "not_ok"
	}
	return "write_error"
}

// safeError renders an error for logs and state: our errors carry no
// record content by construction.
func safeError(err error) string {
	if err == nil {
		return ""
	}
	return Clip(err.Error(), 500)
}

// maxRefusal bounds the remote's reason kept with a failure.
const maxRefusal = 300

// refusalText renders a refusal program's result: a string as it is,
// anything else as JSON, clipped to maxRefusal bytes.
func refusalText(v any) string {
	s, ok := v.(string)
	if !ok && v != nil {
		b, _ := json.Marshal(v)
		s = string(b)
	}
	return Clip(strings.TrimSpace(s), maxRefusal)
}

func ScalarString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprint(x)
	case json.Number:
		return x.String()
	case int:
		return fmt.Sprint(x)
	case bool:
		return fmt.Sprint(x)
	}
	return ""
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// payloadHash is the hash of the payload's canonical JSON (sorted keys).
func payloadHash(p any) string {
	b, _ := json.Marshal(p)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:16])
}

func shortHash(v any) string {
	b, _ := json.Marshal(v)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:4])
}

// isSubset reports whether every field of want has the same value in have
// (dry-run's "the target already says this").
func isSubset(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !isSubset(wv, h[k]) {
				return false
			}
		}
		return true
	default:
		wb, _ := json.Marshal(want)
		hb, _ := json.Marshal(have)
		return string(wb) == string(hb)
	}
}

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

// SortedReasons returns reason codes with counts, most frequent first.
func SortedReasons(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if m[out[i]] != m[out[j]] {
			return m[out[i]] > m[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

func (ru *run) countWrite(connector string) {
	ru.writesMu.Lock()
	if ru.writes == nil {
		ru.writes = map[string]int{}
	}
	ru.writes[connector]++
	ru.writesMu.Unlock()
}

func (ru *run) writeCounts() map[string]int {
	ru.writesMu.Lock()
	defer ru.writesMu.Unlock()
	out := make(map[string]int, len(ru.writes))
	for k, v := range ru.writes {
		out[k] = v
	}
	return out
}

// keyDigest is the first 16 bytes of the key's SHA-256: collisions are not
// a practical concern at any listing size.
func keyDigest(key string) [16]byte {
	sum := sha256.Sum256([]byte(key))
	var d [16]byte
	copy(d[:], sum[:16])
	return d
}
