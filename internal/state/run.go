package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"casesync/engine"
)

// Run statuses the store itself writes.
const (
	StatusRunning     = "running"
	StatusInterrupted = "interrupted"
)

// StartRun records a new run. Any earlier run of the pipeline still marked
// running was left by a crash (a live run finishes before the next starts),
// so it becomes interrupted and the change is audited.
func (s *Store) StartRun(ctx context.Context, pipeline, specHash, trigger string, at time.Time) (int64, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := formatTime(at)
		// Audit first: the UPDATE below is what removes them from the match.
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO audit (at, actor, action, pipeline, detail)
			SELECT ?, 'engine', 'run_interrupted', pipeline, 'run=' || id
			FROM runs WHERE pipeline = ? AND status = 'running'`, now, pipeline); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			UPDATE runs SET status = 'interrupted'
			WHERE pipeline = ? AND status = 'running'`, pipeline); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `
			INSERT INTO runs (pipeline, spec_hash, "trigger", started, status)
			VALUES (?, ?, ?, ?, 'running') RETURNING id`,
			pipeline, specHash, trigger, now).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("start run of %s: %w", pipeline, err)
	}
	return id, nil
}

// FinishRun records a run's end, status, counts and (sanitized) error.
func (s *Store) FinishRun(ctx context.Context, runID int64, status string, counts engine.Counts, errMsg string, at time.Time) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return fmt.Errorf("finish run %d: %w", runID, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
			UPDATE runs SET finished = ?, status = ?, counts = ?, error = ?
			WHERE id = ?`, formatTime(at), status, string(b), capText(errMsg), runID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish run %d: %w", runID, err)
	}
	return nil
}

const runColumns = `id, pipeline, spec_hash, "trigger", started, finished, status, counts, error`

// Runs lists a pipeline's runs, newest first; pipeline "" means every
// pipeline and limit <= 0 means all.
func (s *Store) Runs(ctx context.Context, pipeline string, limit int) ([]engine.RunInfo, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT `+runColumns+` FROM runs
		WHERE ? = '' OR pipeline = ?
		ORDER BY id DESC LIMIT ?`, pipeline, pipeline, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var runs []engine.RunInfo
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// LastRun returns the pipeline's latest run.
func (s *Store) LastRun(ctx context.Context, pipeline string) (engine.RunInfo, bool, error) {
	row := s.r.QueryRowContext(ctx, `
		SELECT `+runColumns+` FROM runs
		WHERE pipeline = ? ORDER BY id DESC LIMIT 1`, pipeline)
	r, err := scanRun(row)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.RunInfo{}, false, nil
	}
	if err != nil {
		return engine.RunInfo{}, false, fmt.Errorf("read last run of %s: %w", pipeline, err)
	}
	return r, true, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRun(sc scanner) (engine.RunInfo, error) {
	var (
		r                engine.RunInfo
		started, counts  string
		finished         sql.NullString
		err1, err2, err3 error
	)
	if err := sc.Scan(&r.ID, &r.Pipeline, &r.SpecHash, &r.Trigger, &started, &finished, &r.Status, &counts, &r.Error); err != nil {
		return r, err
	}
	r.Started, err1 = parseTime(started)
	r.Finished, err2 = parseNullTime(finished)
	err3 = json.Unmarshal([]byte(counts), &r.Counts)
	return r, errors.Join(err1, err2, err3)
}

// Outcomes lists one run's outcomes in commit order. Links and cursor
// values are not kept per outcome, so those fields come back empty.
func (s *Store) Outcomes(ctx context.Context, runID int64) ([]engine.Outcome, error) {
	rows, err := s.r.QueryContext(ctx, `
		SELECT record_key, action, reason, error, class, target_id, transaction_id, payload_hash, at
		FROM outcomes WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, fmt.Errorf("list outcomes of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []engine.Outcome
	for rows.Next() {
		var (
			o  engine.Outcome
			at string
		)
		if err := rows.Scan(&o.RecordKey, &o.Action, &o.Reason, &o.Error, &o.Class, &o.TargetID, &o.Transaction, &o.PayloadHash, &at); err != nil {
			return nil, fmt.Errorf("list outcomes of run %d: %w", runID, err)
		}
		if o.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("list outcomes of run %d: %w", runID, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list outcomes of run %d: %w", runID, err)
	}
	return out, nil
}
