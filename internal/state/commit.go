package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"casesync/engine"
)

// Retry defaults, used when a RetryPolicy field is zero.
const (
	DefaultMaxAttempts = 5
	DefaultBase        = time.Minute
	DefaultMax         = 6 * time.Hour
)

// CommitPage applies a page in one transaction, in this order per outcome:
// insert the outcome row; for created, updated and unchanged, upsert the
// record's last write; remember or forget its source version; clear its
// create intent (kept for an unconfirmed failure); write its link, if any; clear the key's retry entry
// (created, updated, unchanged, skipped) or enqueue it (failed); and for a
// fanned-out item, clear the entry of its source record's own key unless
// that record failed in this page (itemSettled). Then the
// cursor advances when c.Cursor is set. Any error, a cancelled ctx included,
// rolls the whole page back, so the page is simply read again.
func (s *Store) CommitPage(ctx context.Context, c engine.PageCommit) error {
	if err := s.commitPage(ctx, c); err != nil {
		return fmt.Errorf("commit page of %s: %w", c.Pipeline, err)
	}
	return nil
}

func (s *Store) commitPage(ctx context.Context, c engine.PageCommit) error {
	if c.Pipeline == "" {
		return errors.New("pipeline is empty")
	}
	if c.Now.IsZero() {
		return errors.New("now is zero")
	}
	now := formatTime(c.Now)
	erased := false
	defer func() {
		if erased {
			s.scheduleErase()
		}
	}()
	if s.bulkable(&c) {
		err := s.prepareBulk(ctx)
		if err == nil {
			err = s.inFoldTx(ctx, func(tx *sql.Tx) error {
				p := &pageTx{s: s, ctx: ctx, tx: tx, c: &c, now: now}
				defer p.close()
				defer func() { erased = p.erased }()
				if err := p.bulk(); err != nil {
					return err
				}
				return p.advanceCursor()
			})
		}
		// An error is reported by the outcome-by-outcome commit below,
		// which names the outcome and record it met; a cancelled ctx
		// stops here.
		if err == nil || ctx.Err() != nil {
			return err
		}
		erased = false
	}
	return s.inFoldTx(ctx, func(tx *sql.Tx) error {
		p := &pageTx{ctx: ctx, tx: tx, c: &c, now: now}
		defer p.close()
		defer func() { erased = p.erased }()
		settle := itemSettled(c.Outcomes)
		for i := range c.Outcomes {
			o := &c.Outcomes[i]
			if err := p.apply(o); err != nil {
				return fmt.Errorf("outcome %d (record %s): %w", i, o.RecordKey, err)
			}
			if settle[o.SourceKey] && o.RecordKey != o.SourceKey {
				delete(settle, o.SourceKey)
				if err := p.settleRecord(o.SourceKey); err != nil {
					return fmt.Errorf("outcome %d (record %s): %w", i, o.RecordKey, err)
				}
			}
			if s.testAfterOutcome != nil {
				s.testAfterOutcome(i)
			}
		}
		return p.advanceCursor()
	})
}

// advanceCursor moves the pipeline's cursor when the page sets one.
func (p *pageTx) advanceCursor() error {
	if p.c.Cursor == nil {
		return nil
	}
	if _, err := p.exec(`
		INSERT INTO cursors (pipeline, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (pipeline) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
		p.c.Pipeline, *p.c.Cursor, p.now); err != nil {
		return fmt.Errorf("advance cursor: %w", err)
	}
	return nil
}

// pageTx is one CommitPage transaction with its statements prepared once
// per page, not once per outcome.
type pageTx struct {
	s     *Store
	ctx   context.Context
	tx    *sql.Tx
	c     *engine.PageCommit
	now   string
	stmts map[string]*sql.Stmt
	// erased is set when the page deleted a retry entry or parked one,
	// which may have held a pushed record's body: the store then moves
	// the cleared pages out of the WAL soon (erase.go).
	erased bool
	// retries and intents say whether the pipeline has rows in
	// retry_queue and write_intents, asked once per page (nil: not yet):
	// most pages of a healthy run have none, and a DELETE per outcome that
	// finds nothing was a fifth of a page's statements. The page holds the
	// single writer connection, so no row appears meanwhile except by the
	// page itself (enqueue sets retries).
	retries, intents *bool
}

// pipelineHas reports, once per page, whether table holds a row of the
// page's pipeline.
func (p *pageTx) pipelineHas(memo **bool, table string) (bool, error) {
	if *memo != nil {
		return **memo, nil
	}
	// table is one of our two constants, never input.
	row, err := p.queryRow(`SELECT EXISTS (SELECT 1 FROM `+table+` WHERE pipeline = ?)`, p.c.Pipeline)
	if err != nil {
		return false, err
	}
	var has bool
	if err := row.Scan(&has); err != nil {
		return false, err
	}
	*memo = &has
	return has, nil
}

func (p *pageTx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := p.stmts[query]; ok {
		return st, nil
	}
	st, err := p.tx.PrepareContext(p.ctx, query)
	if err != nil {
		return nil, err
	}
	if p.stmts == nil {
		p.stmts = make(map[string]*sql.Stmt)
	}
	p.stmts[query] = st
	return st, nil
}

func (p *pageTx) exec(query string, args ...any) (sql.Result, error) {
	st, err := p.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(p.ctx, args...)
}

func (p *pageTx) queryRow(query string, args ...any) (*sql.Row, error) {
	st, err := p.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(p.ctx, args...), nil
}

func (p *pageTx) close() {
	for _, st := range p.stmts {
		st.Close()
	}
}

func (p *pageTx) apply(o *engine.Outcome) error {
	at := p.now
	if !o.At.IsZero() {
		at = formatTime(o.At)
	}
	// The outcome goes first: its CHECK on action rejects an unknown action
	// before anything else of this outcome is written.
	if _, err := p.exec(oneOutcome,
		p.c.RunID, o.RecordKey, string(o.Action), o.Reason, capText(o.Error), string(o.Class),
		o.TargetID, o.Transaction, o.PayloadHash, at); err != nil {
		return fmt.Errorf("insert outcome: %w", err)
	}
	switch o.Action {
	case engine.ActionCreated, engine.ActionUpdated, engine.ActionUnchanged:
		if err := p.upsertRecord(o, at); err != nil {
			return fmt.Errorf("record last write: %w", err)
		}
	}
	if err := p.sourceVersion(o, at); err != nil {
		return fmt.Errorf("source version: %w", err)
	}
	if err := p.clearIntent(o); err != nil {
		return fmt.Errorf("clear create intent: %w", err)
	}
	if o.Link != nil {
		if err := p.writeLink(o); err != nil {
			return fmt.Errorf("write link: %w", err)
		}
	}
	switch o.Action {
	case engine.ActionCreated, engine.ActionUpdated, engine.ActionUnchanged, engine.ActionSkipped:
		has, err := p.pipelineHas(&p.retries, "retry_queue")
		if err != nil {
			return fmt.Errorf("clear retry entry: %w", err)
		}
		if !has {
			return nil
		}
		res, err := p.exec(`DELETE FROM retry_queue WHERE pipeline = ? AND record_key = ?`,
			p.c.Pipeline, o.RecordKey)
		if err != nil {
			return fmt.Errorf("clear retry entry: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			p.erased = true
		}
	case engine.ActionFailed:
		if err := p.enqueue(o); err != nil {
			return fmt.Errorf("enqueue retry: %w", err)
		}
		has := true
		p.retries = &has
	default:
		return fmt.Errorf("unknown action %q", o.Action)
	}
	return nil
}

// upsertRecord keeps the last successful write. An unchanged outcome that
// omits the hash or target id keeps the stored one; one that omits both
// (a source record skipped as already handled) only touches an existing
// row, since a fanned-out record has rows under its item keys, not its own.
func (p *pageTx) upsertRecord(o *engine.Outcome, at string) error {
	if o.Action == engine.ActionUnchanged && o.PayloadHash == "" && o.TargetID == "" {
		_, err := p.exec(`
			UPDATE records SET action = 'unchanged', updated_at = ?
			WHERE pipeline = ? AND record_key = ?`, at, p.c.Pipeline, o.RecordKey)
		return err
	}
	_, err := p.exec(oneRecord,
		p.c.Pipeline, o.RecordKey, o.PayloadHash, o.TargetID, string(o.Action), at)
	return err
}

// writeLink inserts a ledger row, leaves an identical one alone, and
// replaces (and audits) one that maps the same (system_a, id_a, system_b)
// to a different id_b: the target's answer is newer than our memory.
func (p *pageTx) writeLink(o *engine.Outcome) error {
	l := o.Link
	// Insert first: a new link (every row of a first load) then costs one
	// statement, and only an existing one is read back and compared.
	res, err := p.exec(`
		INSERT INTO links (system_a, id_a, system_b, id_b, pipeline, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (system_a, id_a, system_b) DO NOTHING`, l.SystemA, l.IDA, l.SystemB, l.IDB, p.linkPipeline(l), p.now)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	return p.relink(o)
}

// linkPipeline is the pipeline a link is recorded under: its own, else the
// page's.
func (p *pageTx) linkPipeline(l *engine.Link) string {
	if l.Pipeline != "" {
		return l.Pipeline
	}
	return p.c.Pipeline
}

// relink compares an existing link with the outcome's and replaces (and
// audits) it when the target now names another id.
func (p *pageTx) relink(o *engine.Outcome) error {
	l := o.Link
	pipeline := p.linkPipeline(l)
	row, err := p.queryRow(`SELECT id_b FROM links WHERE system_a = ? AND id_a = ? AND system_b = ?`,
		l.SystemA, l.IDA, l.SystemB)
	if err != nil {
		return err
	}
	var old string
	if err := row.Scan(&old); err != nil {
		return err
	}
	if old == l.IDB {
		return nil
	}
	if _, err := p.exec(`
		UPDATE links SET id_b = ?, pipeline = ?, created_at = ?
		WHERE system_a = ? AND id_a = ? AND system_b = ?`,
		l.IDB, pipeline, p.now, l.SystemA, l.IDA, l.SystemB); err != nil {
		return err
	}
	_, err = p.exec(`
		INSERT INTO audit (at, actor, action, pipeline, record_key, detail)
		VALUES (?, 'engine', 'link_replaced', ?, ?, ?)`,
		p.now, p.c.Pipeline, o.RecordKey,
		fmt.Sprintf("%s:%s -> %s: %s replaced by %s", l.SystemA, l.IDA, l.SystemB, old, l.IDB))
	return err
}

// itemSettled names the source records of the page that have outcomes of
// their fanned-out items (key#item) and no failure of their own. A failure
// queued under such a record's own key (its enrich or fan-out failed in an
// earlier run) is settled: the record got past those stages this time, and
// its items' outcomes now stand for it, each cleared or queued by its own
// key. Without this the record's entry, which no later outcome names, would
// stay queued (and be retried) for ever.
func itemSettled(outs []engine.Outcome) map[string]bool {
	var settle map[string]bool
	failed := map[string]bool{}
	for i := range outs {
		o := &outs[i]
		switch {
		case o.SourceKey == "":
		case o.RecordKey == o.SourceKey:
			if o.Action == engine.ActionFailed {
				failed[o.SourceKey] = true
			}
		default:
			if settle == nil {
				settle = map[string]bool{}
			}
			settle[o.SourceKey] = true
		}
	}
	for k := range failed {
		delete(settle, k)
	}
	return settle
}

// settleRecord clears the retry entry under a source record's own key.
func (p *pageTx) settleRecord(sourceKey string) error {
	// Asked once per page, as for the items' own entries.
	if has, err := p.pipelineHas(&p.retries, "retry_queue"); err != nil || !has {
		return err
	}
	res, err := p.exec(`DELETE FROM retry_queue WHERE pipeline = ? AND record_key = ?`, p.c.Pipeline, sourceKey)
	if err != nil {
		return fmt.Errorf("settle retry entry of %s: %w", sourceKey, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		p.erased = true
	}
	return nil
}

// enqueue counts a failure and schedules the next try by the policy.
func (p *pageTx) enqueue(o *engine.Outcome) error {
	row, err := p.queryRow(`SELECT attempts FROM retry_queue WHERE pipeline = ? AND record_key = ?`,
		p.c.Pipeline, o.RecordKey)
	if err != nil {
		return err
	}
	var attempts int
	if err := row.Scan(&attempts); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	attempts++
	maxAttempts := p.c.Retry.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	parked := attempts >= maxAttempts
	next := p.c.Now.Add(Backoff(p.c.Retry, attempts))
	// A later failure without a cursor value keeps the one already queued,
	// so the record can still be re-listed from there.
	_, err = p.exec(`
		INSERT INTO retry_queue (pipeline, record_key, attempts, next_at, last_error, reason, class, cursor_value, parked, updated_at, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CASE WHEN ? THEN NULL ELSE ? END)
		ON CONFLICT (pipeline, record_key) DO UPDATE SET
			attempts = excluded.attempts,
			next_at = excluded.next_at,
			last_error = excluded.last_error,
			reason = excluded.reason,
			class = excluded.class,
			cursor_value = CASE WHEN excluded.cursor_value <> ''
				THEN excluded.cursor_value ELSE retry_queue.cursor_value END,
			parked = excluded.parked,
			updated_at = excluded.updated_at,
			body = CASE WHEN excluded.parked THEN NULL
				WHEN excluded.body IS NOT NULL THEN excluded.body ELSE retry_queue.body END`,
		p.c.Pipeline, o.RecordKey, attempts, formatTime(next), capText(o.Error), o.Reason,
		string(o.Class), o.CursorValue, parked, p.now, parked, nullBytes(o.Body))
	if parked {
		// A parked record's body is erased: schedule it out of the WAL.
		p.erased = true
	}
	return err
}

// nullBytes stores an empty body as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// Backoff is the delay before try attempts+1 after attempts failures:
// min(Base·2^(attempts-1), Max), with DefaultBase and DefaultMax standing in
// for zero fields.
func Backoff(pol engine.RetryPolicy, attempts int) time.Duration {
	base, maxDelay := pol.Base, pol.Max
	if base <= 0 {
		base = DefaultBase
	}
	if maxDelay <= 0 {
		maxDelay = DefaultMax
	}
	d := base
	for i := 1; i < attempts && d < maxDelay; i++ {
		if d > maxDelay/2 {
			d = maxDelay // doubling would pass Max (or overflow)
			break
		}
		d *= 2
	}
	return min(d, maxDelay)
}

// maxText bounds a stored error message. Messages are sanitized by their
// producer; the bound keeps a runaway one from filling the file.
const maxText = 1024

func capText(s string) string {
	if len(s) <= maxText {
		return s
	}
	s = s[:maxText]
	// Drop a rune the cut split (at most three bytes of one).
	for i := 0; i < utf8.UTFMax-1; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
