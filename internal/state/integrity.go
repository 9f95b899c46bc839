package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrCorrupt means SQLite found the state file damaged.
var ErrCorrupt = errors.New("state file is damaged")

// applicationID marks a SQLite file as casesync's ("CSNC" in the header's
// application_id field), so an unrelated database passed as --state is
// refused rather than migrated in place.
const applicationID = 0x43534E43

// CorruptError is a damaged state file, with what SQLite reported. It
// matches ErrCorrupt with errors.Is.
type CorruptError struct{ Detail string }

func (e *CorruptError) Error() string {
	return "state file is damaged (" + e.Detail + "); nothing was written. Move it aside and restore the last backup, " +
		"or salvage it with `sqlite3 FILE .recover | sqlite3 NEW` and check NEW with `engine status --state NEW`"
}

func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// corrupted turns SQLite's corruption codes (SQLITE_CORRUPT, SQLITE_NOTADB),
// which can surface at any first statement on a damaged file, into a
// CorruptError with a hint; other errors pass through.
func corrupted(err error) error {
	var coded interface{ Code() int }
	if err == nil || !errors.As(err, &coded) {
		return err
	}
	const sqliteCorrupt, sqliteNotADB = 11, 26
	switch coded.Code() & 0xff {
	case sqliteCorrupt, sqliteNotADB:
		return &CorruptError{Detail: err.Error()}
	}
	return err
}

// checkOwn refuses a SQLite file that is not casesync's: another
// application's id, or no id on a file that has content but not casesync's
// tables (a file from before the id was stamped has them and is accepted).
func checkOwn(ctx context.Context, db *sql.DB) error {
	var id, version, objects, runs int
	err := db.QueryRowContext(ctx, `SELECT
		(SELECT application_id FROM pragma_application_id),
		(SELECT user_version FROM pragma_user_version),
		(SELECT count(*) FROM sqlite_schema),
		(SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'runs')`).Scan(&id, &version, &objects, &runs)
	if err != nil {
		return fmt.Errorf("read the file header: %w", err)
	}
	switch {
	case id == applicationID:
		return nil
	case id != 0:
		return fmt.Errorf("%w: it is a SQLite database of another application (application_id %#x); pass --state with casesync's own file", ErrNotState, id)
	case objects == 0 || (version > 0 && runs == 1):
		return nil
	default:
		return fmt.Errorf("%w: it is a SQLite database with other tables; pass --state with casesync's own file", ErrNotState)
	}
}

// stampOwn writes casesync's application_id into a new or older file.
func stampOwn(ctx context.Context, db *sql.DB) error {
	var id int
	if err := db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&id); err != nil {
		return err
	}
	if id == applicationID {
		return nil
	}
	// PRAGMA takes no bound parameters; the id is our constant.
	_, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID))
	return err
}

// checkIntegrity runs SQLite's quick_check (the page structure, without
// the index-content cross-check of integrity_check), so a damaged file is
// refused on open instead of failing half-way through a run.
func checkIntegrity(ctx context.Context, db *sql.DB) error {
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check(1)").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return &CorruptError{Detail: res}
	}
	return nil
}

// probe checks, without writing, that the file is casesync's and whole.
func probe(ctx context.Context, abs string) error {
	db, err := sql.Open("sqlite", dsn(abs, []string{"mode=ro", "_pragma=busy_timeout(5000)"}))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, step := range []func(context.Context, *sql.DB) error{checkOwn, checkIntegrity} {
		if err := step(ctx, db); err != nil {
			return corrupted(err)
		}
	}
	return nil
}

// createPrivate creates a missing state file readable by its owner only
// before SQLite opens it, since SQLite gives the -wal and -shm files the
// main file's mode.
func createPrivate(abs string) error {
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if f != nil {
			f.Close()
		}
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("is a directory")
	}
	return nil
}

// makePrivate takes group and world access off an existing state file and
// its -wal, -shm and -intents: they hold case ids and, while they wait,
// inbox bodies.
func makePrivate(abs string) error {
	for _, p := range []string{abs, abs + "-wal", abs + "-shm", abs + "-intents"} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
			return fmt.Errorf("%s is readable by other users (mode %#o) and could not be made private: %w", p, fi.Mode().Perm(), err)
		}
	}
	return nil
}
