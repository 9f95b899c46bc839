package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"casesync/engine"
)

// BeginCreate records, in its own transaction, that a create of the payload
// with this hash is about to be sent for a record (BeginCreates for one).
func (s *Store) BeginCreate(ctx context.Context, pipeline, recordKey, payloadHash string, runID int64, at time.Time) error {
	return s.BeginCreates(ctx, runID, at, []engine.Intent{{Pipeline: pipeline, RecordKey: recordKey, PayloadHash: payloadHash}})
}

// CreateIntent returns the payload hash of a create recorded by BeginCreate
// and not cleared by an outcome since.
func (s *Store) CreateIntent(ctx context.Context, pipeline, recordKey string) (string, bool, error) {
	j := s.intentJournal()
	if j != nil {
		j.foldMu.RLock()
		defer j.foldMu.RUnlock()
	}
	var h string
	err := s.r.QueryRowContext(ctx, `
		SELECT payload_hash FROM write_intents WHERE pipeline = ? AND record_key = ?`,
		pipeline, recordKey).Scan(&h)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("read create intent of %s in %s: %w", recordKey, pipeline, err)
	}
	intents := map[string]string{}
	if err == nil {
		intents[recordKey] = h
	}
	if j != nil {
		j.overlay(pipeline, func(k string) bool { return k == recordKey }, intents)
	}
	h, ok := intents[recordKey]
	return h, ok, nil
}

// clearIntent deletes a record's create intent, unless the outcome is a
// failure whose write may have reached the target.
func (p *pageTx) clearIntent(o *engine.Outcome) error {
	if o.Action == engine.ActionFailed && o.Unconfirmed {
		return nil
	}
	if has, err := p.pipelineHas(&p.intents, "write_intents"); err != nil || !has {
		return err
	}
	_, err := p.exec(`DELETE FROM write_intents WHERE pipeline = ? AND record_key = ?`, p.c.Pipeline, o.RecordKey)
	return err
}

// AbandonCreate deletes a record's create intent: the create certainly did
// not reach the target.
func (s *Store) AbandonCreate(ctx context.Context, pipeline, recordKey string) error {
	if s.journal != nil {
		if err := s.journal.append([]journalEntry{{Pipeline: pipeline, RecordKey: recordKey, Abandon: true}}); err != nil {
			return fmt.Errorf("abandon create intent of %s in %s: %w", recordKey, pipeline, err)
		}
		return nil
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM write_intents WHERE pipeline = ? AND record_key = ?`, pipeline, recordKey)
		return err
	})
	if err != nil {
		return fmt.Errorf("abandon create intent of %s in %s: %w", recordKey, pipeline, err)
	}
	return nil
}
