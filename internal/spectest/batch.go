package spectest

import (
	"context"
	"fmt"

	"casesync/engine"
	"casesync/engine/mapping"
)

// batchTarget is the in-process side of a target that writes rows itself
// (a SQL table, upsert.sql): each queued row is recorded as an UPSERT of
// the table with the row as its body, each removal of a row whose record
// left the source set as a DELETE (or FLAG) by its id.
type batchTarget struct {
	*target
}

func (t *batchTarget) Batch() engine.Batch { return &batch{t: t.target} }

type batch struct {
	t *target
}

func (b *batch) table() (string, *engine.SQLUpsertSpec) {
	s := b.t.p.Spec.Upsert.SQL
	if s == nil {
		return b.t.p.Upsert.Connector, &engine.SQLUpsertSpec{}
	}
	return s.Table, s
}

func (b *batch) Upsert(_ string, payload map[string]any, v *mapping.Vars) error {
	table, s := b.table()
	for _, k := range s.Key {
		// As the connector: a row with an empty key would merge every such
		// record into one.
		if engine.ScalarString(payload[k]) == "" {
			return fmt.Errorf("%w: column %s", engine.ErrEmptyKey, k)
		}
	}
	b.t.r.note(payload, Call{Method: "UPSERT", Path: table, Body: payload}, true)
	return nil
}

func (b *batch) Remove(_, targetID string) error {
	table, s := b.table()
	method := "DELETE"
	if s.OnLeave == "flag" {
		method = "FLAG"
	}
	// A removal has no payload: it gets its own group, in the order it
	// was queued.
	marker := map[string]any{"id": targetID}
	b.t.r.note(marker, Call{Method: method, Path: table, Body: marker}, true)
	return nil
}

// Flush applies nothing: the rows were recorded as they were queued.
func (b *batch) Flush(ctx context.Context) error { return nil }

// LoadTable answers a lookup loaded whole (a SQL select) from the test's
// "table NAME" section.
func (r *remote) LoadTable(ctx context.Context, l *engine.APILookup) (map[string]any, error) {
	rows, ok := r.t.Tables[l.Name]
	if !ok {
		r.mu.Lock()
		r.unanswered = append(r.unanswered, "table "+l.Name)
		r.mu.Unlock()
		return nil, &engine.RemoteError{Class: engine.ClassConfig, Msg: "the test declares no table " + l.Name + " (add -- table " + l.Name + " --)"}
	}
	return rows, nil
}

// Preview shows the row a write would queue.
func (t *batchTarget) Preview(ctx context.Context, update bool, payload map[string]any, v *mapping.Vars) (*engine.CallPreview, error) {
	table, _ := (&batch{t: t.target}).table()
	return &engine.CallPreview{Method: "UPSERT", Path: table, Body: payload}, nil
}
