package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// A record a webhook pushes (an inbox without fetch) exists nowhere the
// engine can read again: if it fails, its body stays in the retry queue
// (Outcome.Body) and the retry runs it from there. The state erases the
// body when the record succeeds or is parked.

// keepBodies attaches to each failed outcome the record it came from.
func (ru *run) keepBodies(ctx context.Context, records []any, outs []Outcome) []Outcome {
	var bodies map[string][]byte
	for i := range outs {
		if outs[i].Action != ActionFailed {
			continue
		}
		if bodies == nil {
			bodies = make(map[string][]byte, len(records))
			for _, rec := range records {
				if b, err := json.Marshal(rec); err == nil {
					bodies[ru.sel.keyOf(ctx, rec)] = b
				}
			}
		}
		key, _, _ := strings.Cut(outs[i].RecordKey, "#")
		if outs[i].SourceKey != "" {
			key = outs[i].SourceKey
		}
		outs[i].Body = bodies[key]
	}
	return outs
}

// pushedDue reports whether pipeline has pushed records due for a retry.
func (r *Runner) pushedDue(ctx context.Context, pipeline string, opts SyncOptions) bool {
	if opts.SkipRetries || opts.DryRun != nil {
		return false
	}
	due, err := r.state.DueRetries(ctx, pipeline, r.clock.Now().UTC(), 0)
	if err != nil {
		return false
	}
	for _, it := range due {
		if len(it.Body) > 0 {
			return true
		}
	}
	return false
}

// pushedRetries runs the due retries that carry their record, one page,
// committed before the rest of the run.
func (rd *reader) pushedRetries(ctx context.Context) error {
	ru := rd.ru
	due, err := ru.r.state.DueRetries(ctx, ru.p.Name, ru.started, 10000)
	if err != nil {
		return fmt.Errorf("%s: read retry queue: %w", ru.p.Name, err)
	}
	var records []any
	seen := map[string]bool{}
	for _, it := range due {
		if len(it.Body) == 0 {
			continue
		}
		// Items of a fan-out share their record's body: run it once.
		base, _, _ := strings.Cut(it.RecordKey, "#")
		if seen[base] {
			continue
		}
		seen[base] = true
		dec := json.NewDecoder(bytes.NewReader(it.Body))
		dec.UseNumber()
		var rec any
		if err := dec.Decode(&rec); err != nil {
			return fmt.Errorf("%s: kept body of %s is not JSON: %w", ru.p.Name, it.RecordKey, err)
		}
		records = append(records, rec)
	}
	if len(records) == 0 {
		return nil
	}
	outs, fatal := ru.keep(ru.page(ctx, records, false))
	outs = ru.keepBodies(ctx, records, outs)
	if err := ru.commit(ctx, outs, nil); err != nil {
		return err
	}
	return fatal
}
