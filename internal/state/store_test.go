package state

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is the fixed clock every test starts from.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// openTest opens a fresh store in t.TempDir and closes it at cleanup.
func openTest(tb testing.TB) *Store {
	tb.Helper()
	return openAt(tb, filepath.Join(tb.TempDir(), "state.db"))
}

// openAt opens the store at path and closes it at cleanup.
func openAt(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// rawDB opens the file with no casesync pragmas, as the sqlite3 CLI would.
func rawDB(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// pragma reads one pragma on a connection of db.
func pragma(tb testing.TB, db *sql.DB, name string) string {
	tb.Helper()
	var v string
	if err := db.QueryRowContext(tb.Context(), "PRAGMA "+name).Scan(&v); err != nil {
		tb.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// dump returns every row of every table as text, sorted, for comparing
// the whole file before and after an operation.
func dump(tb testing.TB, s *Store) map[string][]string {
	tb.Helper()
	ctx := tb.Context()
	// intent_journal holds the journal file's random name: bookkeeping,
	// not what the store remembers.
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'intent_journal'`)
	if err != nil {
		tb.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			tb.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	out := make(map[string][]string)
	for _, t := range tables {
		rows, err := s.r.QueryContext(ctx, "SELECT * FROM "+t)
		if err != nil {
			tb.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				tb.Fatal(err)
			}
			out[t] = append(out[t], fmt.Sprintf("%q", vals))
		}
		rows.Close()
		slices.Sort(out[t])
	}
	return out
}

func TestStore_OpenSetsPragmas(t *testing.T) {
	s := openTest(t)
	tests := []struct {
		name string
		db   *sql.DB
		want map[string]string
	}{
		{"writer", s.w, map[string]string{
			"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000",
			"synchronous": "1", "secure_delete": "1", "query_only": "0",
		}},
		{"reader", s.r, map[string]string{
			"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "5000", "query_only": "1",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := make(map[string]string)
			for k := range tc.want {
				got[k] = pragma(t, tc.db, k)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("pragmas (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := s.r.ExecContext(t.Context(), `INSERT INTO cursors VALUES ('p', 'v', 'x')`); err == nil {
		t.Error("a write through the reader pool succeeded, want query_only to refuse it")
	}
}

func TestStore_CheckWALRefusesOtherModes(t *testing.T) {
	db := rawDB(t, filepath.Join(t.TempDir(), "delete.db"))
	if _, err := db.ExecContext(t.Context(), "PRAGMA journal_mode = DELETE"); err != nil {
		t.Fatal(err)
	}
	err := checkWAL(t.Context(), db)
	if err == nil || !strings.Contains(err.Error(), `journal mode is "delete", want wal`) {
		t.Errorf("checkWAL = %v, want a journal mode error", err)
	}
}

func TestStore_MigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	var schemas []string
	for range 3 {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		schemas = append(schemas, schemaText(t, s.r))
		if v, _ := userVersion(t.Context(), s.r); v != len(migrations) {
			t.Errorf("user_version = %d, want %d", v, len(migrations))
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < len(schemas); i++ {
		if diff := cmp.Diff(schemas[0], schemas[i]); diff != "" {
			t.Errorf("schema after open %d (-first +now):\n%s", i+1, diff)
		}
	}
}

func schemaText(tb testing.TB, db *sql.DB) string {
	tb.Helper()
	rows, err := db.QueryContext(tb.Context(), `SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			tb.Fatal(err)
		}
		b.WriteString(s + ";\n")
	}
	return b.String()
}

func TestStore_SchemaVersionChecks(t *testing.T) {
	n := len(migrations)
	tests := []struct {
		name     string
		version  int // written to user_version before the open; -1 leaves a fresh migrated file
		readOnly bool
		wantIs   error
		wantMsg  string
	}{
		{"open refuses a newer file", n + 1, false, ErrSchemaTooNew, fmt.Sprintf("schema version %d, newer than this binary's %d", n+1, n)},
		{"read-only refuses a newer file", n + 1, true, ErrSchemaTooNew, "use a newer casesync"},
		{"read-only refuses a foreign file", 0, true, ErrNotState, "not a casesync state file"},
		{"open accepts its own version", -1, false, nil, ""},
		{"read-only accepts its own version", -1, true, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.version >= 0 {
				db := rawDB(t, path)
				if _, err := db.ExecContext(t.Context(), fmt.Sprintf("PRAGMA user_version = %d", tc.version)); err != nil {
					t.Fatal(err)
				}
				db.Close()
			}
			open := Open
			if tc.readOnly {
				open = OpenReadOnly
			}
			s, err = open(path)
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, tc.wantIs) || (tc.wantIs == nil) != (err == nil) {
				t.Fatalf("open = %v, want errors.Is %v", err, tc.wantIs)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("open = %q, want it to say %q", err, tc.wantMsg)
			}
		})
	}
}

func TestStore_CheckVersion(t *testing.T) {
	tests := []struct {
		name       string
		file, want int
		wantIs     error
		wantMsg    string
	}{
		{"same", 2, 2, nil, ""},
		{"older", 1, 2, ErrSchemaTooOld, "state file is at schema version 1, older than this binary's 2: run a command that writes (such as sync) to migrate it"},
		{"newer", 3, 2, ErrSchemaTooNew, "state file is at schema version 3, newer than this binary's 2: use a newer casesync"},
		{"foreign", 0, 2, ErrNotState, "not a casesync state file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := rawDB(t, filepath.Join(t.TempDir(), "v.db"))
			if _, err := db.ExecContext(t.Context(), fmt.Sprintf("PRAGMA user_version = %d", tc.file)); err != nil {
				t.Fatal(err)
			}
			err := checkVersion(t.Context(), db, tc.want)
			if !errors.Is(err, tc.wantIs) || (err == nil) != (tc.wantIs == nil) {
				t.Fatalf("checkVersion = %v, want errors.Is %v", err, tc.wantIs)
			}
			if err != nil && err.Error() != tc.wantMsg {
				t.Errorf("checkVersion = %q, want %q", err, tc.wantMsg)
			}
		})
	}
}

func TestStore_FailedMigrationRollsBack(t *testing.T) {
	fsys := fstest.MapFS{
		"0001_first.sql":  {Data: []byte("CREATE TABLE a (x INTEGER) STRICT;")},
		"0002_broken.sql": {Data: []byte("CREATE TABLE b (x INTEGER) STRICT; CREATE TABLE a (y INTEGER);")},
	}
	db := rawDB(t, filepath.Join(t.TempDir(), "m.db"))
	db.SetMaxOpenConns(1)
	err := migrate(t.Context(), db, fsys)
	if err == nil || !strings.Contains(err.Error(), "migrate to 0002_broken.sql") {
		t.Fatalf("migrate = %v, want 0002 to fail", err)
	}
	if v, _ := userVersion(t.Context(), db); v != 1 {
		t.Errorf("user_version = %d, want 1", v)
	}
	var n int
	db.QueryRowContext(t.Context(), `SELECT count(*) FROM sqlite_schema WHERE name = 'b'`).Scan(&n)
	if n != 0 {
		t.Error("table b from the failed migration exists")
	}
}

func TestStore_LoadMigrations(t *testing.T) {
	sql := &fstest.MapFile{Data: []byte("SELECT 1;")}
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []int
		wantErr string
	}{
		{"embedded", nil, nil, ""},
		{"numbered", fstest.MapFS{"0001_a.sql": sql, "0002_b.sql": sql}, []int{1, 2}, ""},
		{"gap", fstest.MapFS{"0001_a.sql": sql, "0003_c.sql": sql}, nil, "0003_c.sql: want number 0002"},
		{"no number", fstest.MapFS{"init.sql": sql}, nil, "init.sql: name must be NNNN_name.sql"},
		{"short number", fstest.MapFS{"1_a.sql": sql}, nil, "1_a.sql: name must be NNNN_name.sql"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fs.FS(tc.fsys)
			if tc.fsys == nil {
				fsys = migrationFS
			}
			ms, err := loadMigrations(fsys)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("loadMigrations = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) == 0 {
				t.Fatal("no migrations")
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if tc.want != nil {
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("versions (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestStore_OpenReadOnly(t *testing.T) {
	t.Run("missing file is not created", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.db")
		_, err := OpenReadOnly(path)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("OpenReadOnly = %v, want fs.ErrNotExist", err)
		}
		if want := "open state " + path + ": file does not exist"; err.Error() != want {
			t.Errorf("error = %q, want %q", err, want)
		}
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("OpenReadOnly created %s", path)
		}
	})
	t.Run("reads and refuses writes", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		w, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		if err := w.SetCursor(ctx, "p", "c1", "cli:test", t0); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := OpenReadOnly(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if v, ok, err := r.Cursor(ctx, "p"); err != nil || !ok || v != "c1" {
			t.Errorf("Cursor = %q, %v, %v; want c1", v, ok, err)
		}
		writes := map[string]error{
			"SetCursor":  r.SetCursor(ctx, "p", "c2", "cli:test", t0),
			"CommitPage": r.CommitPage(ctx, page("p", 1)),
			"Audit":      r.Audit(ctx, auditAt(t0)),
		}
		for name, err := range writes {
			if !errors.Is(err, ErrReadOnly) {
				t.Errorf("%s = %v, want ErrReadOnly", name, err)
			}
		}
	})
}

func TestStore_CloseTwice(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Errorf("Close #%d = %v", i+1, err)
		}
	}
}

func TestStore_TimeTextSortsAsTime(t *testing.T) {
	times := []time.Time{
		t0,
		t0.Add(500 * time.Millisecond),
		t0.Add(time.Second),
		t0.Add(time.Second + time.Nanosecond),
		t0.In(time.FixedZone("ICT", 7*3600)).Add(2 * time.Second),
	}
	for i := 1; i < len(times); i++ {
		a, b := formatTime(times[i-1]), formatTime(times[i])
		if a >= b {
			t.Errorf("%s sorts at or after %s", a, b)
		}
		got, err := parseTime(b)
		if err != nil || !got.Equal(times[i]) || got.Location() != time.UTC {
			t.Errorf("parseTime(%s) = %v, %v; want %v in UTC", b, got, err, times[i])
		}
	}
}

func TestStore_OpenOddPaths(t *testing.T) {
	tests := []struct{ name, rel string }{
		{"space", "with space/state.db"},
		{"query and fragment characters", "q?x=1#frag/state%20.db"},
		{"relative", "state.db"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.rel)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.name == "relative" {
				t.Chdir(dir)
				path = tc.rel
			}
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, tc.rel)); err != nil {
				t.Errorf("the file is not where asked: %v", err)
			}
			r, err := OpenReadOnly(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Path(); got != path {
				t.Errorf("Path() = %q, want %q", got, path)
			}
			r.Close()
		})
	}
}
