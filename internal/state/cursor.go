package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"casesync/engine"
)

// Cursor returns the pipeline's cursor; ok is false before the first run.
func (s *Store) Cursor(ctx context.Context, pipeline string) (string, bool, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM cursors WHERE pipeline = ?`, pipeline).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read cursor of %s: %w", pipeline, err)
	}
	return v, true, nil
}

// SetCursor sets or rewinds a cursor by hand and audits the old and new
// values.
func (s *Store) SetCursor(ctx context.Context, pipeline, value, actor string, at time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := formatTime(at)
		var old sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT value FROM cursors WHERE pipeline = ?`, pipeline).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO cursors (pipeline, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (pipeline) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			pipeline, value, now); err != nil {
			return err
		}
		detail := fmt.Sprintf("from=%q to=%q", old.String, value)
		if !old.Valid {
			detail = fmt.Sprintf("from=none to=%q", value)
		}
		return insertAudit(ctx, tx, engine.AuditEntry{
			At: at, Actor: actor, Action: "cursor_set", Pipeline: pipeline, Detail: detail,
		})
	})
	if err != nil {
		return fmt.Errorf("set cursor of %s: %w", pipeline, err)
	}
	return nil
}

// Record returns the last successful write for a record key of a pipeline.
func (s *Store) Record(ctx context.Context, pipeline, recordKey string) (engine.RecordState, bool, error) {
	var (
		r  engine.RecordState
		at string
	)
	err := s.r.QueryRowContext(ctx, `
		SELECT payload_hash, target_id, action, updated_at FROM records
		WHERE pipeline = ? AND record_key = ?`, pipeline, recordKey).
		Scan(&r.PayloadHash, &r.TargetID, &r.Action, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.RecordState{}, false, nil
	}
	if err == nil {
		r.UpdatedAt, err = parseTime(at)
	}
	if err != nil {
		return engine.RecordState{}, false, fmt.Errorf("read record %s of %s: %w", recordKey, pipeline, err)
	}
	return r, true, nil
}

// FindLink returns the id on systemB linked to (systemA, idA). A row written
// as (systemA, idA, systemB) wins; otherwise the oldest row written the
// other way round, (systemB, id, systemA, idA), answers.
func (s *Store) FindLink(ctx context.Context, systemA, idA, systemB string) (string, bool, error) {
	var id string
	err := s.r.QueryRowContext(ctx, `
		SELECT id FROM (
			SELECT id_b AS id, 0 AS reversed, 0 AS created_at FROM links
			WHERE system_a = ?1 AND id_a = ?2 AND system_b = ?3
			UNION ALL
			SELECT id_a, 1, created_at FROM links
			WHERE system_b = ?1 AND id_b = ?2 AND system_a = ?3
		) ORDER BY reversed, created_at LIMIT 1`, systemA, idA, systemB).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("find link %s:%s -> %s: %w", systemA, idA, systemB, err)
	}
	return id, true, nil
}

// Audit appends one audit row.
func (s *Store) Audit(ctx context.Context, e engine.AuditEntry) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error { return insertAudit(ctx, tx, e) })
	if err != nil {
		return fmt.Errorf("write audit %s: %w", e.Action, err)
	}
	return nil
}

func insertAudit(ctx context.Context, tx *sql.Tx, e engine.AuditEntry) error {
	if e.At.IsZero() {
		return errors.New("audit time is zero")
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO audit (at, actor, action, pipeline, record_key, detail)
		VALUES (?, ?, ?, ?, ?, ?)`,
		formatTime(e.At), e.Actor, e.Action, e.Pipeline, e.RecordKey, capText(e.Detail))
	return err
}

// AuditLog lists audit rows, newest first; pipeline "" means all and
// limit <= 0 means no limit.
func (s *Store) AuditLog(ctx context.Context, pipeline string, limit int) ([]engine.AuditEntry, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT at, actor, action, pipeline, record_key, detail FROM audit
		WHERE ?1 = '' OR pipeline = ?1 ORDER BY id DESC LIMIT ?2`, pipeline, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []engine.AuditEntry
	for rows.Next() {
		var (
			e  engine.AuditEntry
			at string
		)
		if err := rows.Scan(&at, &e.Actor, &e.Action, &e.Pipeline, &e.RecordKey, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		if e.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	return out, nil
}
