package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"casesync/engine"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Sentinel errors, for errors.Is.
var (
	// ErrSchemaTooNew means the file was migrated by a newer casesync.
	ErrSchemaTooNew = errors.New("state file is newer than this binary")
	// ErrSchemaTooOld means a read-only open found a file that needs a
	// migration only a writing open can apply.
	ErrSchemaTooOld = errors.New("state file needs migrating")
	// ErrNotState means the file is a SQLite database but not casesync's.
	ErrNotState = errors.New("not a casesync state file")
	// ErrReadOnly is returned by writes on a store from OpenReadOnly.
	ErrReadOnly = errors.New("state is open read-only")
	// ErrNotFound is returned when a run or inbox id does not exist.
	ErrNotFound = errors.New("not found")
)

// Store is the SQLite implementation of engine.RunState, and the file the
// CLI reads for status, runs and failures. Lifecycle:
//  1. open with Open (creates and migrates the file) or OpenReadOnly (for
//     commands that only read: status, failures, runs);
//  2. use from any goroutine: writes go through one connection and queue
//     there, reads use a separate query_only pool;
//  3. the opener calls Close (safe to call twice).
type Store struct {
	path string
	abs  string
	w    *sql.DB // the single writer; nil when read-only
	// journal records create intents (journal.go); nil when read-only.
	journal *journal
	// readJournal, on a read-only store, holds the journal's lines its
	// writer had not folded at the open (nil when none).
	readJournal *journal
	r           *sql.DB // query_only readers

	closeOnce sync.Once
	closeErr  error
	release   func() // lets go of the writer lease; nil when read-only

	stmts sync.Map // query → *sql.Stmt on the writer (prepared)

	eraseMu        sync.Mutex
	eraseTimer     *time.Timer // the pending checkpoint of erase.go
	closed         bool
	testEraseDelay time.Duration

	// testAfterOutcome, when set by a test, runs inside CommitPage after
	// each outcome is applied, to cancel or fail a commit half-way.
	testAfterOutcome func(i int)
}

var _ engine.RunState = (*Store)(nil)

// Option configures Open and OpenReadOnly.
type Option func(*config)

type config struct {
	readers int
	wait    time.Duration
	holder  string
}

// WithWait has Open wait up to d for another process's writer lease to be
// released, instead of failing at once with a HeldError.
func WithWait(d time.Duration) Option {
	return func(c *config) { c.wait = max(d, 0) }
}

// WithHolder names this process in the lease ("engine sync"), for another
// process's refusal; the default is the program and its first argument.
func WithHolder(name string) Option {
	return func(c *config) { c.holder = name }
}

// WithReaders bounds the reader pool (default 4).
func WithReaders(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readers = n
		}
	}
}

// The writer's pragmas go in the DSN so any connection the pool (re)opens
// gets them; a PRAGMA sent with Exec reaches one connection only.
// busy_timeout comes first so the journal_mode switch itself waits for a
// lock. secure_delete zeroes freed content, so a processed inbox body does
// not linger in free pages. cache_size bounds each connection's page cache
// to 256 KiB: SQLite's default (2 MB) costs ~4 MB per connection through
// modernc's allocator, ~20 MB over the writer and four readers once the file
// is large, while the state's reads are point lookups that the OS page cache
// serves as well (engine bench --scenario memory). wal_autocheckpoint lets
// the WAL grow to 8,000 pages (~32 MB) before it is copied back, instead
// of 1,000: a first load inserts at random keys, so each page commit
// dirties a few hundred leaves, and a leaf dirtied by several commits
// between two checkpoints is written back once (engine bench --scenario
// sql at 100,000 cases: 240-259 -> 229-230 µs of CPU a row). An erased
// inbox body does not wait for it: erase.go checkpoints at once.
var (
	writerParams = []string{
		"_pragma=busy_timeout(5000)",
		"_pragma=journal_mode(WAL)",
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=wal_autocheckpoint(8000)",
		"_pragma=secure_delete(1)",
		"_pragma=cache_size(-256)",
		"_txlock=immediate",
	}
	readerParams = []string{
		"_pragma=busy_timeout(5000)",
		"_pragma=foreign_keys(1)",
		"_pragma=query_only(1)",
		"_pragma=cache_size(-256)",
	}
)

// dsn builds a file: URI, so SQLite's own parameters (mode=ro) apply and a
// path holding '?', '#' or '%' is escaped rather than misread.
func dsn(abs string, params []string) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	return u.String() + "?" + strings.Join(params, "&")
}

// Open opens (creating if needed) the state file at path for writing. It
// first takes the file's writer lease (see lease.go): a second writing
// process is refused with a HeldError, or waits (WithWait), so two runs never
// both find nothing and both create. It then creates the file 0600, checks
// that it is casesync's own (application_id) and undamaged (quick_check),
// that WAL took, and applies any pending migrations. A file migrated by a
// newer binary is refused with ErrSchemaTooNew.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := newConfig(opts)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	release, err := acquireLease(abs, holderName(cfg.holder, time.Now()), cfg.wait)
	if err != nil {
		var held *HeldError
		if errors.As(err, &held) {
			held.Path = path
			return nil, held
		}
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	s, err := openWriter(abs, path, cfg)
	if err != nil {
		release()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	s.release = release
	return s, nil
}

func openWriter(abs, path string, cfg config) (*Store, error) {
	ctx := context.Background()
	if err := createPrivate(abs); err != nil {
		return nil, err
	}
	// The writer's DSN switches the file to WAL on connect, which rewrites
	// its header: a foreign or damaged file is refused before that, through
	// a read-only probe.
	if err := probe(ctx, abs); err != nil {
		return nil, err
	}
	if err := makePrivate(abs); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(abs, writerParams))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	for _, step := range []func(context.Context, *sql.DB) error{checkWAL, stampOwn} {
		if err := step(ctx, w); err != nil {
			w.Close()
			return nil, corrupted(err)
		}
	}
	if err := migrate(ctx, w, migrationFS); err != nil {
		w.Close()
		return nil, err
	}
	j, err := openJournal(ctx, abs, w)
	if err != nil {
		w.Close()
		return nil, err
	}
	r, err := openReaders(abs, readerParams, cfg.readers)
	if err != nil {
		j.release(abs)
		w.Close()
		return nil, err
	}
	return &Store{path: path, abs: abs, w: w, r: r, journal: j}, nil
}

// OpenReadOnly opens an existing state file for reading only. It never
// creates the file: a missing one fails with an error wrapping
// fs.ErrNotExist. Writes on the returned Store fail with ErrReadOnly.
func OpenReadOnly(path string, opts ...Option) (*Store, error) {
	cfg := newConfig(opts)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	// mode=ro alone would also refuse a missing file, but with SQLite's
	// vaguer "unable to open database file".
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("open state %s: %w", path, fs.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("open state %s: %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("open state %s: is a directory", path)
	}
	params := append([]string{"mode=ro"}, readerParams...)
	r, err := openReaders(abs, params, cfg.readers)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	ctx := context.Background()
	for _, step := range []func(context.Context, *sql.DB) error{checkOwn, checkIntegrity, checkWAL} {
		if err := step(ctx, r); err != nil {
			r.Close()
			return nil, fmt.Errorf("open state %s: %w", path, corrupted(err))
		}
	}
	if err := checkVersion(ctx, r, len(migrations)); err != nil {
		r.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	j, err := readJournal(ctx, abs, r)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return &Store{path: path, r: r, readJournal: j}, nil
}

func newConfig(opts []Option) config {
	cfg := config{readers: 4}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func openReaders(abs string, params []string, n int) (*sql.DB, error) {
	r, err := sql.Open("sqlite", dsn(abs, params))
	if err != nil {
		return nil, err
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	// sql.Open connects lazily: ping so a bad file fails here, not at the
	// first query.
	if err := r.PingContext(context.Background()); err != nil {
		r.Close()
		return nil, corrupted(err)
	}
	return r, nil
}

// checkWAL reads back the journal mode: asking for WAL does not fail when
// SQLite cannot honour it (an in-memory or read-only file), it just answers
// with the old mode.
func checkWAL(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal mode is %q, want wal", mode)
	}
	return nil
}

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Close closes both pools. The writer closes last, so SQLite checkpoints the
// WAL into the main file and removes it. Calling Close again returns the
// first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.stopErase()
		var errs []error
		if s.journal != nil {
			// Folded now, the journal is empty once the run is over: a
			// crash is the only way to leave lines in it.
			errs = append(errs, s.inFoldTx(context.Background(), func(*sql.Tx) error { return nil }))
			s.journal.release(s.abs)
		}
		s.stmts.Range(func(_, st any) bool {
			st.(*sql.Stmt).Close()
			return true
		})
		if s.r != nil {
			errs = append(errs, s.r.Close())
		}
		if s.w != nil {
			errs = append(errs, s.w.Close())
		}
		// Only once the writer is closed (and the WAL checkpointed) may
		// another process write.
		if s.release != nil {
			s.release()
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close state %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// prepared returns query prepared once on the writer; a transaction uses
// it through tx.StmtContext, which reuses it on the writer's one connection.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	w, err := s.writer()
	if err != nil {
		return nil, err
	}
	st, err := w.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// writer returns the writing pool, or ErrReadOnly.
func (s *Store) writer() (*sql.DB, error) {
	if s.w == nil {
		return nil, ErrReadOnly
	}
	return s.w, nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE, from the DSN) and
// commits it; any error rolls everything back.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	w, err := s.writer()
	if err != nil {
		return err
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return ctxOr(ctx, err)
	}
	return ctxOr(ctx, tx.Commit())
}

// ctxOr reports a cancelled context instead of err: database/sql rolls the
// transaction back when ctx ends, and the statement that notices then fails
// with a misleading "statement is closed" or "transaction has already been
// committed or rolled back".
func ctxOr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// timeLayout is RFC 3339 in UTC with a fixed nine-digit fraction: unlike
// time.RFC3339Nano it never trims zeros, so comparing the text compares the
// times (next_at <= now in SQL).
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return formatTime(t)
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

func parseNullTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return parseTime(s.String)
}

// limitArg turns "no limit" (<= 0) into SQLite's LIMIT -1.
func limitArg(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}
