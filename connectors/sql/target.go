package sql

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"casesync/engine"
	"casesync/engine/mapping"
)

// target writes a pipeline's payloads as rows of one table.
type target struct {
	p     *Pool
	pl    *engine.Pipeline
	spec  *engine.SQLUpsertSpec
	isKey map[string]bool

	typesMu sync.Mutex
	types   map[string]string // PostgreSQL column types, read once
}

func newTarget(p *Pool, pl *engine.Pipeline) *target {
	t := &target{p: p, pl: pl, spec: pl.Spec.Upsert.SQL, isKey: map[string]bool{}}
	for _, k := range t.spec.Key {
		t.isKey[k] = true
	}
	return t
}

// Find is never called: an upsert by key needs no search (engine check
// declares no find for a sql upsert).
func (t *target) Find(context.Context, map[string]any, *mapping.Vars) (engine.Match, error) {
	return engine.Match{}, nil
}

// Create and Update write one row in its own transaction; the runner
// batches through Batch, these serve callers that write one record.
func (t *target) Create(ctx context.Context, payload map[string]any, v *mapping.Vars) (engine.Written, error) {
	return t.one(ctx, payload, v)
}

func (t *target) Update(ctx context.Context, payload map[string]any, v *mapping.Vars) (engine.Written, error) {
	return t.one(ctx, payload, v)
}

func (t *target) one(ctx context.Context, payload map[string]any, v *mapping.Vars) (engine.Written, error) {
	b := t.Batch()
	if err := b.Upsert("", payload, v); err != nil {
		return engine.Written{}, err
	}
	if err := b.Flush(ctx); err != nil {
		var re *engine.RowErrors
		if errors.As(err, &re) {
			for _, e := range re.Failed {
				return engine.Written{}, e
			}
		}
		return engine.Written{}, err
	}
	id, _ := t.keyID(payload)
	return engine.Written{ID: id}, nil
}

// Preview shows the row and the statement's shape, as dry-run prints it.
func (t *target) Preview(_ context.Context, _ bool, payload map[string]any, _ *mapping.Vars) (*engine.CallPreview, error) {
	return &engine.CallPreview{Method: "UPSERT", Path: fmt.Sprintf("%s ON CONFLICT (%s)", t.spec.Table, strings.Join(t.spec.Key, ", ")), Body: payload}, nil
}

// keyID is the row's id: its key value, or the key values as a JSON
// array when the key has several columns. A key column that is null or
// "" is refused: PostgreSQL never matches a null key, so every such row
// would be a new one.
func (t *target) keyID(payload map[string]any) (string, error) {
	vals := make([]any, len(t.spec.Key))
	for i, k := range t.spec.Key {
		v := payload[k]
		if v == nil || v == "" {
			return "", fmt.Errorf("%w: column %s", engine.ErrEmptyKey, k)
		}
		vals[i] = v
	}
	if len(vals) == 1 {
		return engine.ScalarString(vals[0]), nil
	}
	b, err := json.Marshal(vals)
	return string(b), err
}

// Batch starts a page's batch.
func (t *target) Batch() engine.Batch { return &batch{t: t} }

// op is one queued write for record key: an upsert of row, or what
// on_leave does to the row whose id is id.
type op struct {
	key    string
	row    map[string]any
	remove bool
	id     string
}

// batch takes writes from the page's concurrent records: mu guards ops
// only, so values are converted outside it.
type batch struct {
	t   *target
	mu  sync.Mutex
	ops []op
}

func (b *batch) add(o op) {
	b.mu.Lock()
	b.ops = append(b.ops, o)
	b.mu.Unlock()
}

func (b *batch) Upsert(key string, payload map[string]any, _ *mapping.Vars) error {
	id, err := b.t.keyID(payload)
	if err != nil {
		return err
	}
	row := make(map[string]any, len(payload))
	for k, v := range payload {
		bv, err := bindValue(v)
		if err != nil {
			return fmt.Errorf("column %s: %w", k, err)
		}
		row[k] = bv
	}
	b.add(op{key: key, row: row, id: id})
	return nil
}

func (b *batch) Remove(key, targetID string) error {
	if b.t.spec.OnLeave != "delete" && b.t.spec.OnLeave != "flag" {
		return fmt.Errorf("on_leave is %q: rows are kept", b.t.spec.OnLeave)
	}
	b.add(op{key: key, remove: true, id: targetID})
	return nil
}

// bindValue is a payload value as a parameter: scalars as they are,
// objects and arrays as JSON text.
func bindValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, float64, int, int64:
		return x, nil
	case map[string]any, []any:
		b, err := json.Marshal(x)
		return string(b), err
	}
	return fmt.Sprint(v), nil
}

// Flush writes the batch in one transaction: the upserts as multi-row
// INSERT … ON CONFLICT statements, then the removals. When the database
// refuses part of it, the transaction is rolled back and the batch is
// written again one row at a time, each behind a savepoint, so the rows
// it refuses fail alone (*engine.RowErrors) and the others are written.
func (b *batch) Flush(ctx context.Context) error {
	b.mu.Lock()
	ops := b.ops
	b.ops = nil
	b.mu.Unlock()
	if len(ops) == 0 {
		return nil
	}
	name := b.t.pl.Upsert.Connector
	c, err := b.t.p.open(ctx, name)
	if err != nil {
		return err
	}
	err = b.t.inTx(ctx, c, func(tx *stdsql.Tx) error { return b.t.writeAll(ctx, c.d, tx, ops) })
	if err == nil {
		return nil
	}
	derr := dbError(name, "write "+b.t.spec.Table, err)
	switch engine.ClassOf(derr) {
	case engine.ClassPermanent:
		return b.t.isolate(ctx, c, ops, derr)
	}
	return derr
}

func (t *target) inTx(ctx context.Context, c *conn, fn func(*stdsql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writeAll writes ops in order of kind: upserts grouped by their column
// set, many rows per statement, then removals. Two upserts of one key in
// a page keep the later one: one statement may not touch a row twice.
func (t *target) writeAll(ctx context.Context, d dialect, tx *stdsql.Tx, ops []op) error {
	last := map[string]int{}
	for i, o := range ops {
		if !o.remove {
			last[o.id] = i
		}
	}
	groups := map[string][]map[string]any{}
	var order []string
	var removes []string
	for i, o := range ops {
		if o.remove {
			removes = append(removes, o.id)
			continue
		}
		if last[o.id] != i {
			continue
		}
		cols := columns(o.row)
		sig := strings.Join(cols, ",")
		if _, ok := groups[sig]; !ok {
			order = append(order, sig)
		}
		groups[sig] = append(groups[sig], o.row)
	}
	for _, sig := range order {
		cols := strings.Split(sig, ",")
		rows := groups[sig]
		if d.name == "postgres" {
			types, err := t.columnTypes(ctx, tx)
			if err != nil {
				return err
			}
			stmt, args, err := t.unnestStmt(cols, types, rows)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
				return err
			}
			continue
		}
		per := max(1, min(500, d.maxParams/len(cols)))
		for start := 0; start < len(rows); start += per {
			chunk := rows[start:min(start+per, len(rows))]
			stmt, args := t.upsertStmt(d, cols, chunk)
			if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
				return err
			}
		}
	}
	for _, id := range removes {
		stmt, args, err := t.removeStmt(d, id)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, stmt, args...); err != nil {
			return err
		}
	}
	return nil
}

// isolate writes ops one by one behind savepoints after the batch as a
// whole was refused for a value: the refused rows fail, the rest commit.
func (t *target) isolate(ctx context.Context, c *conn, ops []op, batchErr error) error {
	name := t.pl.Upsert.Connector
	failed := map[string]error{}
	err := t.inTx(ctx, c, func(tx *stdsql.Tx) error {
		for _, o := range ops {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT casesync_row"); err != nil {
				return err
			}
			if err := t.writeAll(ctx, c.d, tx, []op{o}); err != nil {
				failed[o.key] = dbError(name, "write "+t.spec.Table, err)
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT casesync_row"); err != nil {
					return err
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT casesync_row"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return batchErr
	}
	if len(failed) == 0 {
		return nil
	}
	return &engine.RowErrors{Failed: failed}
}

func columns(row map[string]any) []string {
	cols := make([]string, 0, len(row))
	for k := range row {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	return cols
}

// upsertStmt is INSERT INTO table (cols) VALUES (…), … ON CONFLICT (key)
// DO UPDATE SET col = excluded.col for every column but the key, with
// every value a parameter.
func (t *target) upsertStmt(d dialect, cols []string, rows []map[string]any) (string, []any) {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + quote(t.spec.Table) + " (" + quotedList(cols) + ") VALUES ")
	args := make([]any, 0, len(cols)*len(rows))
	for r, row := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for i, c := range cols {
			if i > 0 {
				sb.WriteString(", ")
			}
			args = append(args, row[c])
			sb.WriteString(d.param(len(args)))
		}
		sb.WriteByte(')')
	}
	sb.WriteString(t.conflictClause(cols))
	return sb.String(), args
}

// conflictClause is ON CONFLICT (key) DO UPDATE SET col = excluded.col
// for every column but the key.
func (t *target) conflictClause(cols []string) string {
	var sb strings.Builder
	sb.WriteString(" ON CONFLICT (" + quotedList(t.spec.Key) + ") DO ")
	var sets []string
	for _, c := range cols {
		if !t.isKey[c] {
			sets = append(sets, quote(c)+" = excluded."+quote(c))
		}
	}
	if t.spec.OnLeave == "flag" && t.spec.FlagColumn != "" && !t.hasCol(cols, t.spec.FlagColumn) {
		// A row written again is in the set again.
		sets = append(sets, quote(t.spec.FlagColumn)+" = FALSE")
	}
	if len(sets) == 0 {
		sb.WriteString("NOTHING")
	} else {
		sb.WriteString("UPDATE SET ")
		sb.WriteString(strings.Join(sets, ", "))
	}
	return sb.String()
}

// columnTypes are the PostgreSQL types of the table's columns, read once:
// the unnest statement casts each text array to its column's type.
func (t *target) columnTypes(ctx context.Context, tx *stdsql.Tx) (map[string]string, error) {
	t.typesMu.Lock()
	defer t.typesMu.Unlock()
	if t.types != nil {
		return t.types, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, quote(t.spec.Table))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		types[name] = typ
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	t.types = types
	return types, nil
}

// unnestStmt is the PostgreSQL form of upsertStmt: one text array per
// column, unnested into rows and cast to the column types, so a page is
// one statement of as many parameters as columns, whatever its rows.
//
//	INSERT INTO t (a, b) SELECT u.a::integer, u.b::text
//	FROM unnest($1::text[], $2::text[]) AS u(a, b) ON CONFLICT (a) DO UPDATE SET …
func (t *target) unnestStmt(cols []string, types map[string]string, rows []map[string]any) (string, []any, error) {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + quote(t.spec.Table) + " (" + quotedList(cols) + ") SELECT ")
	args := make([]any, len(cols))
	for i, c := range cols {
		typ, ok := types[c]
		if !ok {
			return "", nil, &pgconnMissingColumn{table: t.spec.Table, column: c}
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("u." + quote(c) + "::" + typ)
		vals := make([]*string, len(rows))
		for r, row := range rows {
			vals[r] = textOf(row[c])
		}
		args[i] = vals
	}
	sb.WriteString(" FROM unnest(")
	for i := range cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "$%d::text[]", i+1)
	}
	sb.WriteString(") AS u (" + quotedList(cols) + ")")
	sb.WriteString(t.conflictClause(cols))
	return sb.String(), args, nil
}

// quotedList is names quoted as identifiers and joined by ", ": the column
// and key lists of every statement.
func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}

// pgconnMissingColumn is a mapped column the table does not have.
type pgconnMissingColumn struct{ table, column string }

func (e *pgconnMissingColumn) Error() string {
	return fmt.Sprintf("table %s has no column %s", e.table, e.column)
}

// FailureClass: the spec and the table disagree, which no record fixes.
func (e *pgconnMissingColumn) FailureClass() engine.Class { return engine.ClassConfig }

// textOf is a bound value as PostgreSQL's text input for it (nil: NULL).
func textOf(v any) *string {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case bool:
		s = strconv.FormatBool(x)
	default:
		s = fmt.Sprint(x)
	}
	return &s
}

func (t *target) hasCol(cols []string, c string) bool {
	for _, x := range cols {
		if x == c {
			return true
		}
	}
	return false
}

// removeStmt deletes or flags the row whose id is id.
func (t *target) removeStmt(d dialect, id string) (string, []any, error) {
	vals := []any{id}
	if len(t.spec.Key) > 1 {
		if err := json.Unmarshal([]byte(id), &vals); err != nil || len(vals) != len(t.spec.Key) {
			return "", nil, fmt.Errorf("row id %q does not hold the %d key columns", id, len(t.spec.Key))
		}
	}
	var where []string
	for i, k := range t.spec.Key {
		where = append(where, quote(k)+" = "+d.param(i+1))
	}
	cond := strings.Join(where, " AND ")
	if t.spec.OnLeave == "flag" {
		return "UPDATE " + quote(t.spec.Table) + " SET " + quote(t.spec.FlagColumn) + " = TRUE WHERE " + cond, vals, nil
	}
	return "DELETE FROM " + quote(t.spec.Table) + " WHERE " + cond, vals, nil
}
