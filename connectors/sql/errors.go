package sql

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"casesync/engine"

	"github.com/jackc/pgx/v5/pgconn"
)

// dbError classifies a database error and renders it without values: a
// PostgreSQL message may quote the value it refused ("invalid input
// syntax for type integer: …"), which is case data, so only its code and
// the names of the column, constraint and table are kept.
func dbError(connector, what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &engine.RemoteError{Class: engine.ClassRetryable, Msg: fmt.Sprintf("%s: %s: %v", connector, what, err), Err: err}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := fmt.Sprintf("%s: %s: postgres error %s (%s)", connector, what, pe.Code, pgCodeName(pe.Code))
		for _, kv := range [][2]string{{"table", pe.TableName}, {"column", pe.ColumnName}, {"constraint", pe.ConstraintName}} {
			if kv[1] != "" {
				msg += fmt.Sprintf(" %s %s", kv[0], kv[1])
			}
		}
		return &engine.RemoteError{Class: pgClass(pe.Code), Msg: msg}
	}
	msg := err.Error()
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "no such table"), strings.Contains(low, "no such column"), strings.Contains(low, "has no column"),
		strings.Contains(low, "does not match any primary key or unique constraint"):
		return &engine.RemoteError{Class: engine.ClassConfig, Msg: fmt.Sprintf("%s: %s: %s", connector, what, msg)}
	case strings.Contains(low, "constraint failed"), strings.Contains(low, "cannot store"):
		// SQLite names the constraint or column, never the value.
		return &engine.RemoteError{Class: engine.ClassPermanent, Msg: fmt.Sprintf("%s: %s: %s", connector, what, msg)}
	case strings.Contains(low, "password authentication failed"):
		return &engine.RemoteError{Class: engine.ClassAuth, Msg: fmt.Sprintf("%s: %s: credentials refused", connector, what)}
	}
	// Connection trouble: the connector names no values, and the DSN is
	// not part of it.
	return &engine.RemoteError{Class: engine.ClassRetryable, Msg: fmt.Sprintf("%s: %s: %s", connector, what, engine.Clip(msg, 300))}
}

// pgClass maps a SQLSTATE class to a failure class: a value refused (22,
// 23) is the record's, a missing table or column or a refused login is
// the deployment's and stops the run (42, 28), anything else may pass.
func pgClass(code string) engine.Class {
	switch {
	case strings.HasPrefix(code, "22"), strings.HasPrefix(code, "23"):
		return engine.ClassPermanent
	case strings.HasPrefix(code, "28"):
		return engine.ClassAuth
	case strings.HasPrefix(code, "42"), strings.HasPrefix(code, "3F"), strings.HasPrefix(code, "3D"):
		return engine.ClassConfig
	}
	return engine.ClassRetryable
}

func pgCodeName(code string) string {
	names := map[string]string{
		"22P02": "invalid text representation", "22001": "value too long", "22003": "number out of range",
		"22007": "invalid datetime format", "22008": "datetime out of range", "23502": "not null violation",
		"23505": "unique violation", "23503": "foreign key violation", "23514": "check violation",
		"42P01": "undefined table", "42703": "undefined column", "42P10": "no unique index on the conflict columns",
		"28P01": "password refused", "21000": "a row written twice in one statement",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return "see the PostgreSQL error codes"
}

// scanRows reads every row as a column → value object, with values in
// the shapes jq works on: text, float64 or int, bool, nil, times as
// RFC 3339 text.
func scanRows(rows *stdsql.Rows) ([]any, error) {
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []any
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			m[c] = jsonValue(vals[i])
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, string, bool, float64:
		return x
	case []byte:
		return string(x)
	case int64:
		return int(x)
	case int32:
		return int(x)
	case int:
		return x
	case float32:
		return float64(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}
