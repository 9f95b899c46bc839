// Package sql is the SQL database connector: the engine's ports
// (engine.Connectors, engine.BatchTarget, engine.TableLoader) over
// database/sql, for PostgreSQL (github.com/jackc/pgx/v5, its stdlib driver)
// and SQLite (modernc.org/sqlite), the driver chosen by the DSN's scheme.
//
// A target writes each payload as one row with INSERT … ON CONFLICT (key)
// DO UPDATE, a page's rows in one transaction; a source lists with a select
// paged by LIMIT/OFFSET; a lookup loads a select's rows once per run.
// Table and column names come from the spec, where engine check has
// checked their syntax, and are quoted here all the same; values are
// always bound parameters, never written into a statement.
package sql
