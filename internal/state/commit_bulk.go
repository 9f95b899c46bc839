package state

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"casesync/engine"
)

// The bulk commit writes a page whose records all got past the target
// (created, updated, unchanged, skipped: the page of a healthy run) as one
// multi-row statement per table instead of four or five statements per
// outcome. Through database/sql and modernc's SQLite each statement costs
// more than the row it writes (a goroutine watching ctx, locks, binding),
// so at a dashboard table's first load this was about half of CommitPage.
// The rows it writes are the ones apply writes outcome by outcome; any page
// it does not take, or any error it meets, goes through apply, whose error
// names the outcome and record.

// bulkSizes are the row counts of the bulk statements, each prepared once
// per store: a page of n rows is written by the largest that fit (100 rows:
// 64 + 16 + 16 + 4), so SQLite parses no statement per page (parsing a
// 100-row VALUES list cost a fifth of the page). No 256: the twenty
// prepared statements held 1.2 MB of the engine's memory with it, 0.3 MB
// without, and a statement of 64 rows already costs less than its rows.
var bulkSizes = [...]int{64, 16, 4, 1}

// bulkKind is one multi-row statement: head, cols parameters per row,
// tail.
type bulkKind struct {
	head string
	cols int
	tail string
}

var (
	bulkOutcomes = bulkKind{`INSERT INTO outcomes (run_id, record_key, action, reason, error, class, target_id, transaction_id, payload_hash, at) VALUES `, 10, ""}
	bulkRecords  = bulkKind{`INSERT INTO records (pipeline, record_key, payload_hash, target_id, action, updated_at) VALUES `, 6, `
		ON CONFLICT (pipeline, record_key) DO UPDATE SET
			payload_hash = CASE WHEN excluded.action = 'unchanged' AND excluded.payload_hash = ''
				THEN records.payload_hash ELSE excluded.payload_hash END,
			target_id = CASE WHEN excluded.action = 'unchanged' AND excluded.target_id = ''
				THEN records.target_id ELSE excluded.target_id END,
			action = excluded.action,
			updated_at = excluded.updated_at`}
	bulkVersions = bulkKind{`INSERT INTO source_versions (pipeline, record_key, version, updated_at) VALUES `, 4, `
		ON CONFLICT (pipeline, record_key) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`}
	// A link whose row exists is not returned: relink compares it.
	bulkLinks = bulkKind{`INSERT INTO links (system_a, id_a, system_b, id_b, pipeline, created_at) VALUES `, 6,
		` ON CONFLICT (system_a, id_a, system_b) DO NOTHING RETURNING system_a, id_a, system_b`}
	bulkKinds = [...]bulkKind{bulkOutcomes, bulkRecords, bulkVersions, bulkLinks}

	// The outcome-by-outcome path writes the same statements one row at a
	// time, so the two paths cannot drift apart in their conflict rules.
	oneOutcome = bulkOutcomes.query(1)
	oneRecord  = bulkRecords.query(1)
	oneVersion = bulkVersions.query(1)
)

func (k bulkKind) query(rows int) string { return k.head + placeholders(k.cols, rows) + k.tail }

// prepareBulk prepares the bulk statements on the writer, once per store;
// it runs before the page's transaction, which holds the one connection.
func (s *Store) prepareBulk(ctx context.Context) error {
	for _, k := range bulkKinds {
		for _, n := range bulkSizes {
			if _, err := s.prepared(ctx, k.query(n)); err != nil {
				return err
			}
		}
	}
	return nil
}

// bulkable reports whether the bulk commit takes the page: no failure (the
// retry queue and a failure's forgetting of its source version stay
// outcome by outcome), every record key and link once (so grouping the
// writes by table cannot reorder two writes of one row), and no test hook
// between outcomes.
func (s *Store) bulkable(c *engine.PageCommit) bool {
	if s.testAfterOutcome != nil || len(c.Outcomes) < 2 {
		return false
	}
	keys := make(map[string]struct{}, len(c.Outcomes))
	var links map[[3]string]struct{}
	for i := range c.Outcomes {
		o := &c.Outcomes[i]
		switch o.Action {
		case engine.ActionCreated, engine.ActionUpdated, engine.ActionUnchanged, engine.ActionSkipped:
		default:
			return false
		}
		if _, dup := keys[o.RecordKey]; dup {
			return false
		}
		keys[o.RecordKey] = struct{}{}
		if o.Link != nil {
			if links == nil {
				links = map[[3]string]struct{}{}
			}
			k := [3]string{o.Link.SystemA, o.Link.IDA, o.Link.SystemB}
			if _, dup := links[k]; dup {
				return false
			}
			links[k] = struct{}{}
		}
	}
	return true
}

// bulk writes the page table by table, in the outcomes' order within each.
func (p *pageTx) bulk() error {
	outs := p.c.Outcomes
	ats := make([]string, len(outs))
	for i := range outs {
		ats[i] = p.now
		if !outs[i].At.IsZero() {
			ats[i] = formatTime(outs[i].At)
		}
	}
	// outcomes
	if err := p.insertRows(bulkOutcomes, len(outs), func(i int, a []any) []any {
		o := &outs[i]
		return append(a, p.c.RunID, o.RecordKey, string(o.Action), o.Reason, capText(o.Error), string(o.Class),
			o.TargetID, o.Transaction, o.PayloadHash, ats[i])
	}); err != nil {
		return err
	}
	// records: the last write; an unchanged outcome without hash and
	// target id only touches an existing row (upsertRecord).
	var written, touched []int
	for i := range outs {
		o := &outs[i]
		switch {
		case o.Action == engine.ActionSkipped:
		case o.Action == engine.ActionUnchanged && o.PayloadHash == "" && o.TargetID == "":
			touched = append(touched, i)
		default:
			written = append(written, i)
		}
	}
	if err := p.insertRows(bulkRecords,
		len(written), func(j int, a []any) []any {
			o := &outs[written[j]]
			return append(a, p.c.Pipeline, o.RecordKey, o.PayloadHash, o.TargetID, string(o.Action), ats[written[j]])
		}); err != nil {
		return err
	}
	for _, i := range touched {
		if _, err := p.exec(`UPDATE records SET action = 'unchanged', updated_at = ? WHERE pipeline = ? AND record_key = ?`,
			ats[i], p.c.Pipeline, outs[i].RecordKey); err != nil {
			return err
		}
	}
	// source_versions
	var versioned []int
	for i := range outs {
		if outs[i].SourceKey != "" && outs[i].SourceVersion != "" {
			versioned = append(versioned, i)
		}
	}
	if err := p.insertRows(bulkVersions,
		len(versioned), func(j int, a []any) []any {
			o := &outs[versioned[j]]
			return append(a, p.c.Pipeline, o.SourceKey, o.SourceVersion, ats[versioned[j]])
		}); err != nil {
		return err
	}
	// write_intents and retry_queue: no outcome of the page failed, so
	// every key's entries are cleared, and those of the source records
	// whose items the page holds (itemSettled).
	if has, err := p.pipelineHas(&p.intents, "write_intents"); err != nil {
		return err
	} else if has {
		if _, err := p.deleteKeys("write_intents", recordKeys(outs, false)); err != nil {
			return err
		}
	}
	if has, err := p.pipelineHas(&p.retries, "retry_queue"); err != nil {
		return err
	} else if has {
		n, err := p.deleteKeys("retry_queue", recordKeys(outs, true))
		if err != nil {
			return err
		}
		if n > 0 {
			p.erased = true
		}
	}
	return p.bulkLinks()
}

// bulkLinks inserts the page's links at once; a link whose row existed
// (not returned) is then compared and, if it changed, replaced and
// audited by relink, as writeLink does.
func (p *pageTx) bulkLinks() error {
	var linked []int
	for i := range p.c.Outcomes {
		if p.c.Outcomes[i].Link != nil {
			linked = append(linked, i)
		}
	}
	inserted := map[[3]string]bool{}
	args := make([]any, 0, bulkLinks.cols*min(len(linked), bulkSizes[0]))
	err := p.eachChunk(bulkLinks, len(linked), func(st *sql.Stmt, start, size int) error {
		args = args[:0]
		for _, i := range linked[start : start+size] {
			l := p.c.Outcomes[i].Link
			args = append(args, l.SystemA, l.IDA, l.SystemB, l.IDB, p.linkPipeline(l), p.now)
		}
		rows, err := st.QueryContext(p.ctx, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k [3]string
			if err := rows.Scan(&k[0], &k[1], &k[2]); err != nil {
				return err
			}
			inserted[k] = true
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	for _, i := range linked {
		o := &p.c.Outcomes[i]
		if inserted[[3]string{o.Link.SystemA, o.Link.IDA, o.Link.SystemB}] {
			continue
		}
		if err := p.relink(o); err != nil {
			return err
		}
	}
	return nil
}

// eachChunk calls fn with the statement of kind for each run of rows
// [start, start+size) that covers n rows, sizes from bulkSizes.
func (p *pageTx) eachChunk(k bulkKind, n int, fn func(st *sql.Stmt, start, size int) error) error {
	start := 0
	for _, size := range bulkSizes {
		for n-start >= size {
			// prepareBulk prepared it: preparing on the writer now would
			// wait for the connection this transaction holds.
			prep, ok := p.s.stmts.Load(k.query(size))
			if !ok {
				return fmt.Errorf("bulk statement of %d rows not prepared", size)
			}
			st := p.tx.StmtContext(p.ctx, prep.(*sql.Stmt))
			err := fn(st, start, size)
			st.Close()
			if err != nil {
				return err
			}
			start += size
		}
	}
	return nil
}

// insertRows writes n rows through kind's statements, each row's
// arguments appended by row.
func (p *pageTx) insertRows(k bulkKind, n int, row func(i int, args []any) []any) error {
	args := make([]any, 0, k.cols*min(n, bulkSizes[0]))
	return p.eachChunk(k, n, func(st *sql.Stmt, start, size int) error {
		args = args[:0]
		for i := start; i < start+size; i++ {
			args = row(i, args)
		}
		_, err := st.ExecContext(p.ctx, args...)
		return err
	})
}

// deleteKeys deletes the pipeline's rows of table (one of our constants)
// whose record_key is in keys.
func (p *pageTx) deleteKeys(table string, keys []string) (int64, error) {
	var n int64
	for start := 0; start < len(keys); start += bulkSizes[0] {
		chunk := keys[start:min(start+bulkSizes[0], len(keys))]
		args := make([]any, 0, 1+len(chunk))
		args = append(args, p.c.Pipeline)
		for _, k := range chunk {
			args = append(args, k)
		}
		res, err := p.tx.ExecContext(p.ctx, `DELETE FROM `+table+` WHERE pipeline = ? AND record_key IN (`+
			strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")+`)`, args...)
		if err != nil {
			return n, err
		}
		m, _ := res.RowsAffected()
		n += m
	}
	return n, nil
}

// recordKeys are the page's record keys, and with sources those of the
// source records its fanned-out items came from.
func recordKeys(outs []engine.Outcome, sources bool) []string {
	keys := make([]string, 0, len(outs))
	seen := make(map[string]bool, len(outs))
	add := func(k string) {
		if k != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	for i := range outs {
		add(outs[i].RecordKey)
		if sources {
			add(outs[i].SourceKey)
		}
	}
	return keys
}

// placeholders is n rows of cols parameters: (?, ?), (?, ?).
func placeholders(cols, n int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	var sb strings.Builder
	sb.Grow(n * (len(row) + 2))
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(row)
	}
	return sb.String()
}
