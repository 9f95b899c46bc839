package state

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"casesync/engine"
)

// PipelineStats is one pipeline's line in `engine status`.
type PipelineStats struct {
	Cursor        string
	HasCursor     bool
	CursorUpdated time.Time
	LastRun       engine.RunInfo
	HasRun        bool
	Queued        int // entries in the retry queue, parked included
	Parked        int
	// QueuedByReason counts the retry queue's entries by reason code, so
	// an admin sees what kind of failure waits (parked ones included).
	QueuedByReason map[string]int
	// LastSuccess is the newest run that finished "succeeded" (its records
	// may still have failed: see its counts).
	LastSuccess engine.RunInfo
	HasSuccess  bool
}

// Stats summarises every pipeline the file knows (by cursor, run or queue
// entry), read from one snapshot.
func (s *Store) Stats(ctx context.Context) (map[string]PipelineStats, error) {
	stats, err := s.stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("read pipeline stats: %w", err)
	}
	return stats, nil
}

func (s *Store) stats(ctx context.Context) (map[string]PipelineStats, error) {
	// One read transaction, so the three queries see the same commit.
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	out := make(map[string]PipelineStats)

	err = eachRow(ctx, tx, `SELECT pipeline, value, updated_at FROM cursors`, func(rows *sql.Rows) error {
		var p, v, at string
		if err := rows.Scan(&p, &v, &at); err != nil {
			return err
		}
		st := out[p]
		st.Cursor, st.HasCursor = v, true
		st.CursorUpdated, err = parseTime(at)
		out[p] = st
		return err
	})
	if err != nil {
		return nil, err
	}
	err = eachRow(ctx, tx, `
		SELECT `+runColumns+` FROM runs
		WHERE id IN (SELECT max(id) FROM runs GROUP BY pipeline)`, func(rows *sql.Rows) error {
		r, err := scanRun(rows)
		if err != nil {
			return err
		}
		st := out[r.Pipeline]
		st.LastRun, st.HasRun = r, true
		out[r.Pipeline] = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = eachRow(ctx, tx, `
		SELECT `+runColumns+` FROM runs
		WHERE id IN (SELECT max(id) FROM runs WHERE status = 'succeeded' GROUP BY pipeline)`, func(rows *sql.Rows) error {
		r, err := scanRun(rows)
		if err != nil {
			return err
		}
		st := out[r.Pipeline]
		st.LastSuccess, st.HasSuccess = r, true
		out[r.Pipeline] = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = eachRow(ctx, tx, `
		SELECT pipeline, reason, count(*) FROM retry_queue GROUP BY pipeline, reason`, func(rows *sql.Rows) error {
		var (
			p, reason string
			n         int
		)
		if err := rows.Scan(&p, &reason, &n); err != nil {
			return err
		}
		st := out[p]
		if st.QueuedByReason == nil {
			st.QueuedByReason = map[string]int{}
		}
		st.QueuedByReason[reason] += n
		out[p] = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = eachRow(ctx, tx, `
		SELECT pipeline, count(*), sum(parked) FROM retry_queue GROUP BY pipeline`, func(rows *sql.Rows) error {
		var (
			p              string
			queued, parked int
		)
		if err := rows.Scan(&p, &queued, &parked); err != nil {
			return err
		}
		st := out[p]
		st.Queued, st.Parked = queued, parked
		out[p] = st
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func eachRow(ctx context.Context, tx *sql.Tx, query string, fn func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
