package state

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// migrationFS is the migrations directory itself; tests pass their own.
var migrationFS, _ = fs.Sub(migrationsFS, "migrations")

// migrations is the embedded list, checked once at start-up: a gap or a
// stray file is a build mistake, not a runtime condition.
var migrations = mustLoadMigrations(migrationFS)

type migration struct {
	version int
	name    string
	sql     string
}

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

// loadMigrations reads NNNN_name.sql files, which must be numbered 1, 2, 3…
// without gaps, since the version recorded in the file is the count applied.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	// fs.Glob returns names sorted, and the four-digit prefix sorts numerically.
	var ms []migration
	for i, name := range names {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || len(num) != 4 || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", name)
		}
		if v != i+1 {
			return nil, fmt.Errorf("migration %s: want number %04d", name, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: path.Base(name), sql: string(b)})
	}
	return ms, nil
}

// migrate applies pending migrations, each in its own transaction together
// with the user_version bump, so a failed migration leaves the file at the
// previous version. The version is re-read inside each transaction: another
// process opening the same file at the same time may have applied it.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) error {
	ms, err := loadMigrations(fsys)
	if err != nil {
		return err
	}
	v, err := userVersion(ctx, db)
	if err != nil {
		return err
	}
	if v > len(ms) {
		return &VersionError{File: v, Binary: len(ms)}
	}
	for _, m := range ms[v:] {
		if err := applyMigration(ctx, db, m); err != nil {
			return fmt.Errorf("migrate to %s: %w", m.name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v >= m.version {
		return nil // applied meanwhile by another opener
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	// PRAGMA takes no bound parameters; m.version is an int we parsed.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		return err
	}
	return tx.Commit()
}

func userVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// checkVersion is the read-only open's check: it cannot migrate, so the
// file must be exactly at the binary's version.
func checkVersion(ctx context.Context, db *sql.DB, want int) error {
	v, err := userVersion(ctx, db)
	if err != nil {
		return err
	}
	switch {
	case v == want:
		return nil
	case v == 0:
		return ErrNotState
	default:
		return &VersionError{File: v, Binary: want}
	}
}

// VersionError is a schema version mismatch. It matches ErrSchemaTooNew or
// ErrSchemaTooOld with errors.Is.
type VersionError struct {
	File, Binary int
}

func (e *VersionError) Error() string {
	if e.File > e.Binary {
		return fmt.Sprintf("state file is at schema version %d, newer than this binary's %d: use a newer casesync", e.File, e.Binary)
	}
	return fmt.Sprintf("state file is at schema version %d, older than this binary's %d: run a command that writes (such as sync) to migrate it", e.File, e.Binary)
}

// Is lets errors.Is(err, ErrSchemaTooNew) match.
func (e *VersionError) Is(target error) bool {
	return (target == ErrSchemaTooNew && e.File > e.Binary) ||
		(target == ErrSchemaTooOld && e.File < e.Binary)
}
