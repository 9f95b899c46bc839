package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"casesync/engine"
)

// SourceVersion returns the version last recorded for a source record of a
// pipeline. CommitPage records it with a successful outcome that carries one
// and forgets it with a failed outcome of the same source record.
func (s *Store) SourceVersion(ctx context.Context, pipeline, recordKey string) (string, bool, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `
		SELECT version FROM source_versions WHERE pipeline = ? AND record_key = ?`,
		pipeline, recordKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read source version of %s in %s: %w", recordKey, pipeline, err)
	}
	return v, true, nil
}

// sourceVersion applies an outcome's source version: a failure forgets the
// record's version (so any re-read processes it again), a success that
// carries one remembers it.
func (p *pageTx) sourceVersion(o *engine.Outcome, at string) error {
	if o.SourceKey == "" {
		return nil
	}
	if o.Action == engine.ActionFailed {
		_, err := p.exec(`DELETE FROM source_versions WHERE pipeline = ? AND record_key = ?`,
			p.c.Pipeline, o.SourceKey)
		return err
	}
	if o.SourceVersion == "" {
		return nil
	}
	_, err := p.exec(oneVersion,
		p.c.Pipeline, o.SourceKey, o.SourceVersion, at)
	return err
}
