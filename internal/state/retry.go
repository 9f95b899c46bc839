package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"casesync/engine"
)

const retryColumns = `pipeline, record_key, attempts, next_at, last_error, reason, class, cursor_value, parked, updated_at, body`

// DueRetries lists a pipeline's queued, unparked records whose next_at has
// come, soonest first; limit <= 0 means all.
func (s *Store) DueRetries(ctx context.Context, pipeline string, now time.Time, limit int) ([]engine.RetryItem, error) {
	items, err := s.queryRetries(ctx, `
		SELECT `+retryColumns+` FROM retry_queue
		WHERE pipeline = ? AND parked = 0 AND next_at <= ?
		ORDER BY next_at, record_key LIMIT ?`, pipeline, formatTime(now), limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list due retries of %s: %w", pipeline, err)
	}
	return items, nil
}

// Failures lists the retry queue, parked entries included; pipeline ""
// means every pipeline.
func (s *Store) Failures(ctx context.Context, pipeline string) ([]engine.RetryItem, error) {
	items, err := s.queryRetries(ctx, `
		SELECT `+retryColumns+` FROM retry_queue
		WHERE ?1 = '' OR pipeline = ?1
		ORDER BY pipeline, record_key`, pipeline)
	if err != nil {
		return nil, fmt.Errorf("list failures: %w", err)
	}
	return items, nil
}

func (s *Store) queryRetries(ctx context.Context, query string, args ...any) ([]engine.RetryItem, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var items []engine.RetryItem
	for rows.Next() {
		var (
			it              engine.RetryItem
			nextAt, updated string
		)
		if err := rows.Scan(&it.Pipeline, &it.RecordKey, &it.Attempts, &nextAt, &it.LastError,
			&it.Reason, &it.Class, &it.CursorValue, &it.Parked, &updated, &it.Body); err != nil {
			return nil, err
		}
		var err1, err2 error
		it.NextAt, err1 = parseTime(nextAt)
		it.UpdatedAt, err2 = parseTime(updated)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, rows.Err()
}

// RequeueNow makes a pipeline's queued records due at once and unparks
// them; recordKey "" means every queued record of the pipeline. Attempts are
// kept, so a parked record that fails again parks again. Each touched record
// gets an audit row naming actor. It returns how many records it touched.
func (s *Store) RequeueNow(ctx context.Context, pipeline, recordKey, actor string, at time.Time) (int, error) {
	if pipeline == "" {
		return 0, errors.New("requeue: pipeline is empty")
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := formatTime(at)
		// Audit first, while the rows still show what they were.
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO audit (at, actor, action, pipeline, record_key, detail)
			SELECT ?1, ?2, 'retry_requested', pipeline, record_key,
				'attempts=' || attempts || ' parked=' || parked
			FROM retry_queue WHERE pipeline = ?3 AND (?4 = '' OR record_key = ?4)
			ORDER BY record_key`, now, actor, pipeline, recordKey); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			UPDATE retry_queue SET next_at = ?1, parked = 0, updated_at = ?1
			WHERE pipeline = ?2 AND (?3 = '' OR record_key = ?3)`, now, pipeline, recordKey)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		if recordKey == "" {
			return 0, fmt.Errorf("requeue failures of %s: %w", pipeline, err)
		}
		return 0, fmt.Errorf("requeue record %s of %s: %w", recordKey, pipeline, err)
	}
	return int(n), nil
}
