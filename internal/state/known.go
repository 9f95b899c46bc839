package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"casesync/engine"
)

// Known reads what the state remembers of a page's source records and
// their fanned-out items (key#item) in one read transaction: a statement
// per table, each joined against the page's keys, instead of three point
// reads per record.
func (s *Store) Known(ctx context.Context, q engine.KnownQuery) (engine.Known, error) {
	kn := engine.Known{Records: map[string]engine.RecordState{}, Links: map[string]string{},
		Versions: map[string]string{}, Intents: map[string]string{}}
	if len(q.SourceKeys) == 0 {
		return kn, nil
	}
	keys, err := json.Marshal(q.SourceKeys)
	if err != nil {
		return kn, err
	}
	j := s.intentJournal()
	if j != nil {
		// No fold commits between the read of write_intents and the
		// overlay of the journal's unfolded lines on it.
		j.foldMu.RLock()
		defer j.foldMu.RUnlock()
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return kn, fmt.Errorf("read state of a page of %s: %w", q.Pipeline, err)
	}
	defer tx.Rollback()
	for _, read := range []func(context.Context, *sql.Tx, engine.KnownQuery, string, *engine.Known) error{
		knownRecords, knownLinks, knownVersions, knownIntents,
	} {
		if err := read(ctx, tx, q, string(keys), &kn); err != nil {
			return kn, fmt.Errorf("read state of a page of %s: %w", q.Pipeline, ctxOr(ctx, err))
		}
	}
	if j != nil {
		want := make(map[string]bool, len(q.SourceKeys))
		for _, k := range q.SourceKeys {
			want[k] = true
		}
		j.overlay(q.Pipeline, isItemOf(want), kn.Intents)
	}
	return kn, nil
}

// keysCTE materialises the page's keys (the JSON array ?2) once; each
// query then walks them as the outer loop (CROSS JOIN fixes the order in
// SQLite) with primary-key lookups inside, so the array is parsed once and
// no table is scanned.
const keysCTE = `WITH k(v) AS MATERIALIZED (SELECT value FROM json_each(?2)) `

// itemsOf selects, for each page key k, the rows of a table keyed
// (pipeline, COL) whose COL is k or k#item: '$' follows '#', so the second
// range is the fan-out items.
func itemsOf(table, cols, col string) string {
	return keysCTE + `SELECT ` + cols + ` FROM k CROSS JOIN ` + table + ` t ON t.pipeline = ?1 AND t.` + col + ` = k.v
		UNION ALL
		SELECT ` + cols + ` FROM k CROSS JOIN ` + table + ` t ON t.pipeline = ?1
			AND t.` + col + ` > k.v || '#' AND t.` + col + ` < k.v || '$'`
}

func knownRecords(ctx context.Context, tx *sql.Tx, q engine.KnownQuery, keys string, kn *engine.Known) error {
	rows, err := tx.QueryContext(ctx, itemsOf("records", "t.record_key, t.payload_hash, t.target_id, t.action, t.updated_at", "record_key"), q.Pipeline, keys)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key, at string
			r       engine.RecordState
		)
		if err := rows.Scan(&key, &r.PayloadHash, &r.TargetID, &r.Action, &at); err != nil {
			return err
		}
		if r.UpdatedAt, err = parseTime(at); err != nil {
			return err
		}
		kn.Records[key] = r
	}
	return rows.Err()
}

// knownLinks reads the ids linked to the page's records. A row written
// as (from, key, to) wins; otherwise the oldest row written the other way
// round answers, as in FindLink.
func knownLinks(ctx context.Context, tx *sql.Tx, q engine.KnownQuery, keys string, kn *engine.Known) error {
	if q.LinkFrom == "" || q.LinkTo == "" {
		return nil
	}
	// Both orientations, exact keys and their items, as four index walks.
	rows, err := tx.QueryContext(ctx, keysCTE+`
		SELECT l.id_a, l.id_b, 0, l.created_at FROM k CROSS JOIN links l
			ON l.system_a = ?3 AND l.id_a = k.v AND l.system_b = ?4
		UNION ALL
		SELECT l.id_a, l.id_b, 0, l.created_at FROM k CROSS JOIN links l
			ON l.system_a = ?3 AND l.id_a > k.v || '#' AND l.id_a < k.v || '$' AND l.system_b = ?4
		UNION ALL
		SELECT l.id_b, l.id_a, 1, l.created_at FROM k CROSS JOIN links l
			ON l.system_b = ?3 AND l.id_b = k.v AND l.system_a = ?4
		UNION ALL
		SELECT l.id_b, l.id_a, 1, l.created_at FROM k CROSS JOIN links l
			ON l.system_b = ?3 AND l.id_b > k.v || '#' AND l.id_b < k.v || '$' AND l.system_a = ?4
		ORDER BY 3, 4`, q.Pipeline, keys, q.LinkFrom, q.LinkTo)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key, id, at string
		var reversed int
		if err := rows.Scan(&key, &id, &reversed, &at); err != nil {
			return err
		}
		if _, ok := kn.Links[key]; !ok {
			kn.Links[key] = id
		}
	}
	return rows.Err()
}

func knownVersions(ctx context.Context, tx *sql.Tx, q engine.KnownQuery, keys string, kn *engine.Known) error {
	rows, err := tx.QueryContext(ctx, keysCTE+`
		SELECT t.record_key, t.version FROM k CROSS JOIN source_versions t ON t.pipeline = ?1 AND t.record_key = k.v`,
		q.Pipeline, keys)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key, v string
		if err := rows.Scan(&key, &v); err != nil {
			return err
		}
		kn.Versions[key] = v
	}
	return rows.Err()
}

func knownIntents(ctx context.Context, tx *sql.Tx, q engine.KnownQuery, keys string, kn *engine.Known) error {
	// Most pipelines have no create in flight (a batch or upsert target
	// never records one): one seek answers for the page, instead of two
	// index walks per key.
	var has bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM write_intents WHERE pipeline = ?)`, q.Pipeline).Scan(&has); err != nil || !has {
		return err
	}
	rows, err := tx.QueryContext(ctx, itemsOf("write_intents", "t.record_key, t.payload_hash", "record_key"), q.Pipeline, keys)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key, h string
		if err := rows.Scan(&key, &h); err != nil {
			return err
		}
		kn.Intents[key] = h
	}
	return rows.Err()
}

// insertIntent records (or renews) a create's intent; a record has at most
// one create in flight.
const insertIntent = `
	INSERT INTO write_intents (pipeline, record_key, payload_hash, run_id, at) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (pipeline, record_key) DO UPDATE SET
		payload_hash = excluded.payload_hash, run_id = excluded.run_id, at = excluded.at`

// BeginCreates records, before it returns, that creates of these payloads
// are about to be sent: appended to the intent journal in one write
// (journal.go), which the next page commit folds into write_intents. The
// commit of each record's outcome deletes its intent (see CommitPage).
func (s *Store) BeginCreates(ctx context.Context, runID int64, at time.Time, intents []engine.Intent) error {
	if len(intents) == 0 {
		return nil
	}
	var err error
	if s.journal != nil {
		err = s.journal.append(journalEntries(runID, formatTime(at), intents))
	} else {
		err = s.beginCreates(ctx, runID, formatTime(at), intents)
	}
	if err != nil {
		return fmt.Errorf("record %d create intent(s): %w", len(intents), err)
	}
	return nil
}

// beginCreates is the journal-less path, a store that cannot write: the
// prepared INSERT reports it.
func (s *Store) beginCreates(ctx context.Context, runID int64, stamp string, intents []engine.Intent) error {
	st, err := s.prepared(ctx, insertIntent)
	if err != nil {
		return err
	}
	if len(intents) == 1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Not cancelled midway: the driver watches a cancellable context
		// from a goroutine of its own per statement, which cost more than
		// this one-row INSERT on the writer's own connection (no other
		// writer can hold it waiting: the lease keeps other processes out).
		in := intents[0]
		_, err := st.ExecContext(context.WithoutCancel(ctx), in.Pipeline, in.RecordKey, in.PayloadHash, runID, stamp)
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		txst := tx.StmtContext(ctx, st)
		for _, in := range intents {
			if _, err := txst.ExecContext(ctx, in.Pipeline, in.RecordKey, in.PayloadHash, runID, stamp); err != nil {
				return err
			}
		}
		return nil
	})
}
