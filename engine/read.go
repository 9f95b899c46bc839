package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"casesync/engine/mapping"
)

// reader is the read stage: it lists the source page by page from the
// cursor (minus its overlap), re-fetches records by key, winds the cursor
// back for due retries, and moves the cursor once the listing is done.
type reader struct {
	ru  *run
	src Source

	mu sync.Mutex
	// maxSeen is the greatest cursor value read in this run.
	maxSeen time.Time

	// ahead is the page whose writes and outcomes are being committed
	// while the next page is decided (flush), nil when none.
	ahead *commitAhead
	// lastPage and lastTotal are the last page committed; reported is
	// the last page Progress heard of.
	lastPage, lastTotal, reported int
}

// commitAhead is a page commit running on its own goroutine.
type commitAhead struct {
	done          chan error
	number, total int
}

// start renders the cursor this run reads from into $cursor: the stored
// value (or the initial one) minus the overlap, or --since.
func (rd *reader) start(ctx context.Context) error {
	ru := rd.ru
	c := ru.p.Source.Cursor
	if c == nil {
		return nil
	}
	at := c.Initial
	if ru.opts.Since != "" {
		t, err := parseCursor(ru.opts.Since)
		if err != nil {
			return fmt.Errorf("--since: %w", err)
		}
		at = t
	} else {
		val, ok, err := ru.r.state.Cursor(ctx, ru.p.Name)
		if err != nil {
			return fmt.Errorf("read cursor of %s: %w", ru.p.Name, err)
		}
		if ok {
			t, err := parseCursor(val)
			if err != nil {
				return fmt.Errorf("stored cursor of %s is not a time: %w", ru.p.Name, err)
			}
			at = t.Add(-c.Overlap)
		}
	}
	ru.vars.Cursor = renderCursor(c, at)
	return nil
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

// cursorOf returns a record's cursor value and notes it as seen.
func (rd *reader) cursorOf(ctx context.Context, rec any) string {
	c := rd.ru.p.Source.Cursor
	if c == nil {
		return ""
	}
	if c.Field != nil {
		if v, err := c.Field.One(ctx, rec, rd.ru.vars); err == nil {
			if s, ok := v.(string); ok && s != "" {
				if t, err := parseCursor(s); err == nil {
					rd.mu.Lock()
					if t.After(rd.maxSeen) {
						rd.maxSeen = t
					}
					rd.mu.Unlock()
				}
				return s
			}
		}
	}
	// A cursor with no per-record field (next: run_start): the record was
	// read because it changed after this run's cursor, so a retry winds
	// the listing back to here to read it again.
	return rd.ru.vars.Cursor
}

// next is where the next run starts: the greatest value seen, capped at
// this run's start (a record stamped in the future must not push the
// cursor past records not yet written), or the run's start.
func (rd *reader) next() *string {
	c := rd.ru.p.Source.Cursor
	if c == nil {
		return nil
	}
	t := rd.ru.started
	if c.Next != "run_start" {
		rd.mu.Lock()
		seen := rd.maxSeen
		rd.mu.Unlock()
		if seen.IsZero() {
			return nil // nothing seen: keep the cursor where it is
		}
		if seen.Before(t) {
			t = seen
		}
	}
	s := FormatCursor(t)
	return &s
}

var errStopListing = errors.New("stop listing")

// listing reads the source page by page and commits each page as soon as
// it is done, so only one page is ever held in memory; the cursor moves in
// a final commit once the whole listing has been read (a crash before it
// re-reads the listing, which the payload hashes make harmless).
func (rd *reader) listing(ctx context.Context, res *RunResult) error {
	return listShared(ctx, rd.src, rd.ru.vars, []*run{rd.ru}, []*RunResult{res})[0]
}

// listShared walks one listing of src and gives each page to every run of
// runs (one pipeline, or the branches of one), each processing and
// committing it as its own, on its own copy of the records (enrich adds
// to a record). A run that fails stops taking pages and keeps its cursor;
// the listing goes on while any run is left. Each run that read to the
// end moves its own cursor. The errors are the runs', in order.
//
// Four things overlap, so a listing is not one core's work: the runs
// (branches) process a page side by side, each its own Known, stages and
// commit (the state's single writer serialises the commits, and each
// run's pages still commit in listing order); a run whose target writes a
// page in one batch commits the page (the batch, then its outcomes) while
// it decides the next one (flush); and the source fetches and decodes the
// next page meanwhile (listAhead), one page ahead and no more. A page is
// handed to the runs only once every run decided the one before and
// committed the one before that.
func listShared(ctx context.Context, src Source, vars *mapping.Vars, runs []*run, res []*RunResult) []error {
	lead := runs[0]
	errs := make([]error, len(runs))
	last := 0
	// report tells Progress, from this goroutine (the one that called
	// Sync), of the pages a run committed since it last heard.
	report := func(ru *run) {
		if rd := ru.read; rd.lastPage > rd.reported {
			rd.reported = rd.lastPage
			ru.progress(rd.lastPage, rd.lastTotal)
		}
	}
	err := listAhead(ctx, src, vars, lead.opts.Limit, func(pg *Page) error {
		if lead.r.BeforePage != nil {
			if err := lead.r.BeforePage(ctx); err != nil {
				return err
			}
		}
		last = pg.Number
		// Each live run gets its own copy of the records, made before any
		// run starts (a run may add to its records); the last one takes
		// the page itself, so a page is held once per run, not once more.
		var taking []int
		for i := range runs {
			if errs[i] == nil {
				taking = append(taking, i)
			}
		}
		own := make([]*Page, len(runs))
		for k, i := range taking {
			own[i] = pg
			if k < len(taking)-1 {
				own[i] = pg.withCopies()
			}
		}
		var wg sync.WaitGroup
		for _, i := range taking {
			ru := runs[i]
			if len(taking) == 1 {
				errs[i] = ru.read.flush(ctx, own[i], false, res[i])
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = ru.read.flush(ctx, own[i], false, res[i])
			}()
		}
		wg.Wait()
		var stop error
		live := 0
		for i, ru := range runs {
			report(ru)
			if errs[i] == nil {
				live++
			} else if stop == nil {
				stop = errs[i]
			}
		}
		if live == 0 {
			return stop
		}
		return nil
	})
	for i, ru := range runs {
		// A page still committing lands before the run ends, whatever
		// ended the listing.
		if serr := ru.read.settle(); serr != nil && errs[i] == nil {
			errs[i] = serr
		}
		switch fatal := ru.stopped(); {
		case fatal != nil:
			errs[i] = fatal
		case errs[i] != nil:
		case err != nil && ctx.Err() != nil:
			errs[i] = err
		case err != nil:
			errs[i] = fmt.Errorf("%s: read source: %w", ru.p.Name, err)
		default:
			errs[i] = ru.read.flush(ctx, &Page{Number: last + 1, Total: -1}, lead.opts.Limit == 0, res[i])
		}
		report(ru)
	}
	return errs
}

// listAhead runs src's listing in a goroutine of its own, one page ahead
// of fn: while fn processes page n, page n+1 is fetched and decoded, and
// the listing then waits for fn to take it before asking for page n+2 (two
// pages in memory: fn's and the next, decoded). fn's error stops the
// listing and is returned; so is the listing's own. With limit > 0 the
// pages are cut to limit records in all and the listing stops, without
// asking for another page, once the limit is reached.
func listAhead(ctx context.Context, src Source, vars *mapping.Vars, limit int, fn func(*Page) error) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan *Page)
	var listErr error
	go func() {
		defer close(pages)
		read := 0
		listErr = src.List(lctx, vars, func(pg *Page) error {
			if limit > 0 && read+len(pg.Records) > limit {
				pg.Records = pg.Records[:limit-read]
			}
			read += len(pg.Records)
			select {
			case pages <- pg:
			case <-lctx.Done():
				return errStopListing
			}
			if limit > 0 && read >= limit {
				return errStopListing
			}
			return nil
		})
	}()
	var fnErr error
	for pg := range pages {
		if fnErr = fn(pg); fnErr != nil {
			break
		}
	}
	// Stop a listing fn gave up on, and wait for it: it may be in the
	// middle of a request.
	cancel()
	for range pages {
	}
	switch {
	case fnErr != nil:
		return fnErr
	case errors.Is(listErr, errStopListing):
		return nil
	}
	return listErr
}

// flush processes and commits one page; the final (empty) one moves the
// cursor unless the run was stopped. With a batch target the commit of a
// page (its batch, then its outcomes) runs on its own goroutine while the
// next page is decided: its records' writes are only queued meanwhile, and
// the next page's batch goes out only once this commit has landed, so the
// pages still reach the target and the state in listing order, and a
// record on both pages is dropped as a repeat on the second (selector),
// whose Known therefore needs nothing of the first's commit. If that
// commit fails, the page decided meanwhile is never sent nor committed,
// as if the run had been stopped before it.
func (rd *reader) flush(ctx context.Context, pg *Page, final bool, res *RunResult) error {
	ru := rd.ru
	outs, fatal := ru.keep(ru.page(ctx, pg.Records, true))
	if err := rd.settle(); err != nil {
		return err
	}
	if ru.opts.DryRun != nil {
		if !final {
			rd.lastPage, rd.lastTotal = pg.Number, pg.Total
		}
		return fatal
	}
	if !final && fatal == nil && ru.write.batch != nil {
		a := &commitAhead{done: make(chan error, 1), number: pg.Number, total: pg.Total}
		pb := ru.write.batch.take()
		go func() { a.done <- ru.commitWith(ctx, pb, outs, nil) }()
		rd.ahead = a
		return nil
	}
	var cur *string
	if final && fatal == nil {
		cur = rd.next()
		if cur != nil {
			res.Cursor = *cur
		}
	}
	if err := ru.commit(ctx, outs, cur); err != nil {
		return err
	}
	if !final {
		rd.lastPage, rd.lastTotal = pg.Number, pg.Total
	}
	return fatal
}

// settle waits for the page commit flush left running, if any.
func (rd *reader) settle() error {
	a := rd.ahead
	if a == nil {
		return nil
	}
	rd.ahead = nil
	if err := <-a.done; err != nil {
		return err
	}
	rd.lastPage, rd.lastTotal = a.number, a.total
	return nil
}

// refetchChunk bounds how many re-fetched records share one commit.
const refetchChunk = 100

// byKeys re-fetches keys one by one with source.get and commits every
// refetchChunk of them, so a long retry keeps what it did if it is
// interrupted.
func (rd *reader) byKeys(ctx context.Context, keys []string) error {
	ru := rd.ru
	if ru.p.Source.Get == nil {
		return fmt.Errorf("%s: source has no get request, so single records cannot be re-fetched; run a full sync instead", ru.p.Name)
	}
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
		if ru.stopped() != nil {
			ru.leftUnprocessed(len(keys) - i)
			break
		}
		if ctx.Err() != nil {
			break
		}
		outs = append(outs, rd.refetch(ctx, k)...)
		if (i+1)%refetchChunk == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

func (rd *reader) refetch(ctx context.Context, key string) []Outcome {
	ru := rd.ru
	v := *ru.vars
	v.Key = key
	rec, err := rd.src.Get(ctx, &v)
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

// retries re-processes the records of the queue that are due: re-fetched
// by key when the source can, else re-listed by winding the cursor back
// to the oldest of them.
func (rd *reader) retries(ctx context.Context) error {
	ru := rd.ru
	due, err := ru.r.state.DueRetries(ctx, ru.p.Name, ru.started, 10000)
	if err != nil {
		return fmt.Errorf("%s: read retry queue: %w", ru.p.Name, err)
	}
	// Pushed records ran from their kept body (pushedRetries).
	due = slices.DeleteFunc(due, func(it RetryItem) bool { return len(it.Body) > 0 })
	if len(due) == 0 {
		return nil
	}
	if ru.p.Source.Get != nil {
		// Items of a fan-out share their record: re-fetch each record once.
		keys := map[string]bool{}
		var order []string
		for _, it := range due {
			k, _, _ := strings.Cut(it.RecordKey, "#")
			if !keys[k] {
				keys[k] = true
				order = append(order, k)
			}
		}
		return rd.byKeys(ctx, order)
	}
	c := ru.p.Source.Cursor
	if c == nil {
		return nil
	}
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
	return nil
}
