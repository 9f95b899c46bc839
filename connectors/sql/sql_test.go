package sql_test

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/testenv"
	"casesync/internal/wire"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// The connector end to end: the people deployment (testdata/people) lists
// src with a paged select, labels through a lookup loaded once per run,
// and upserts into dst, on SQLite and on a real PostgreSQL server.

type secrets map[string]string

func (s secrets) Secret(n string) (string, bool) { v, ok := s[n]; return v, ok }

// database is one database the deployment runs against: the DSN the spec
// gets and a handle the test checks the tables with.
type database struct {
	dsn string
	db  *stdsql.DB
	// ts renders a time the way the database's updated_at column takes it.
	pg bool
}

func sqliteDB(t testing.TB) database {
	path := filepath.Join(t.TempDir(), "people.db")
	db, err := stdsql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return database{dsn: "sqlite:" + path, db: db}
}

func postgresDB(t testing.TB) database {
	dsn := testenv.PostgresDSN(t)
	db, err := stdsql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return database{dsn: dsn, db: db, pg: true}
}

var databases = []struct {
	name string
	open func(testing.TB) database
}{
	{"sqlite", sqliteDB},
	{"postgres", postgresDB},
}

func (d database) exec(t *testing.T, stmt string, args ...any) {
	t.Helper()
	if !d.pg {
		stmt = strings.NewReplacer("$1", "?", "$2", "?", "$3", "?", "$4", "?", "$5", "?", "$6", "?").Replace(stmt)
	}
	if _, err := d.db.Exec(stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func (d database) setup(t *testing.T) {
	t.Helper()
	ts := "TEXT"
	if d.pg {
		ts = "TIMESTAMPTZ"
	}
	d.exec(t, "CREATE TABLE src (id TEXT PRIMARY KEY, name TEXT, age INTEGER, code TEXT, enabled INTEGER, updated_at "+ts+")")
	d.exec(t, "CREATE TABLE labels (code TEXT PRIMARY KEY, label TEXT)")
	d.exec(t, `CREATE TABLE dst (person_id TEXT PRIMARY KEY, name TEXT, age INTEGER, label TEXT, "order" TEXT)`)
	d.exec(t, "INSERT INTO labels VALUES ('a', 'Alpha'), ('b', 'Beta')")
}

// person adds or replaces a source row, updated at the given minute.
func (d database) person(t *testing.T, id, name string, age any, code string, enabled, minute int) {
	t.Helper()
	at := time.Date(2026, 1, 1, 0, minute, 0, 0, time.UTC).Format(time.RFC3339)
	d.exec(t, "DELETE FROM src WHERE id = $1", id)
	d.exec(t, "INSERT INTO src VALUES ($1, $2, $3, $4, $5, $6)", id, name, age, code, enabled, at)
}

func (d database) rows(t *testing.T) []string {
	t.Helper()
	r, err := d.db.Query("SELECT person_id, COALESCE(name, '<null>'), COALESCE(age, -1), COALESCE(label, '<null>') FROM dst ORDER BY person_id")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var id, name, label string
		var age int
		if err := r.Scan(&id, &name, &age, &label); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%s|%d|%s", id, name, age, label))
	}
	return out
}

// clock is a fixed clock moved by the test, so each run's $now is later.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func open(t *testing.T, d database, stateDir string, c *clock) *wire.Deployment {
	t.Helper()
	plan, err := spec.Load("testdata/people", spec.Options{Cwd: "."})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := wire.Open(plan, wire.Options{StatePath: filepath.Join(stateDir, "state.db"), Secrets: secrets{"DB_DSN": d.dsn}, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dep.Close() })
	return dep
}

func sync(t *testing.T, dep *wire.Deployment) *engine.RunResult {
	t.Helper()
	res, err := dep.Runner.Sync(context.Background(), "people", engine.SyncOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestTarget_UpsertRerunChangeLeave(t *testing.T) {
	for _, tc := range databases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.open(t)
			d.setup(t)
			for i, p := range []struct {
				id, name string
				age      any
				code     string
			}{{"p1", "Ana", 9, "a"}, {"p2", "Bo", 12, "b"}, {"p3", "Cy", 4, "zz"}, {"p4", "Di", 16, "a"}, {"p5", "Ed", 7, "b"}} {
				d.person(t, p.id, p.name, p.age, p.code, 1, i+1)
			}
			c := &clock{t: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)}
			dep := open(t, d, t.TempDir(), c)

			res := sync(t, dep)
			want := []string{"p1|Ana|9|Alpha", "p2|Bo|12|Beta", "p3|Cy|4|<null>", "p4|Di|16|Alpha", "p5|Ed|7|Beta"}
			if diff := cmp.Diff(want, d.rows(t)); diff != "" {
				t.Fatalf("first run rows (-want +got):\n%s", diff)
			}
			if res.Counts.Created != 5 || res.Writes["db"] != 5 {
				t.Errorf("first run: %+v writes %v, want 5 created and written", res.Counts, res.Writes)
			}

			// A rerun over a later window reads nothing new.
			c.t = c.t.Add(time.Hour)
			if res := sync(t, dep); res.Writes["db"] != 0 || res.Counts.Read != 0 {
				t.Errorf("rerun: %+v writes %v, want nothing read or written", res.Counts, res.Writes)
			}

			// One changed person is one updated row; a disabled one leaves.
			d.person(t, "p2", "Bo", 13, "a", 1, 70)
			d.person(t, "p4", "Di", 16, "a", 0, 71)
			c.t = c.t.Add(time.Hour)
			res = sync(t, dep)
			want = []string{"p1|Ana|9|Alpha", "p2|Bo|13|Alpha", "p3|Cy|4|<null>", "p5|Ed|7|Beta"}
			if diff := cmp.Diff(want, d.rows(t)); diff != "" {
				t.Fatalf("after a change and a disable (-want +got):\n%s", diff)
			}
			if res.Counts.Updated != 2 || res.Writes["db"] != 1 {
				t.Errorf("change run: %+v writes %v, want 2 updated (one row, one removal) and 1 upsert", res.Counts, res.Writes)
			}
			outs, err := dep.State.Outcomes(context.Background(), res.RunID)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range outs {
				got = append(got, fmt.Sprintf("%s %s %s", o.RecordKey, o.Action, o.Reason))
			}
			if diff := cmp.Diff([]string{"p2 updated ", "p4 updated left_set"}, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}

			// Still disabled and touched again: nothing more to remove.
			d.person(t, "p4", "Di", 16, "a", 0, 72)
			c.t = c.t.Add(time.Hour)
			if res := sync(t, dep); res.Writes["db"] != 0 || res.Counts.Skipped != 1 {
				t.Errorf("disabled again: %+v writes %v, want one skipped and nothing written", res.Counts, res.Writes)
			}
			// Enabled again: the row comes back.
			d.person(t, "p4", "Di", 17, "a", 1, 73)
			c.t = c.t.Add(time.Hour)
			sync(t, dep)
			want = []string{"p1|Ana|9|Alpha", "p2|Bo|13|Alpha", "p3|Cy|4|<null>", "p4|Di|17|Alpha", "p5|Ed|7|Beta"}
			if diff := cmp.Diff(want, d.rows(t)); diff != "" {
				t.Fatalf("after re-enabling (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTarget_RefusedRowFailsAlone: a row the database refuses (a CHECK
// constraint) fails with the constraint's name and no value, and the rest
// of its page is written.
func TestTarget_RefusedRowFailsAlone(t *testing.T) {
	for _, tc := range databases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.open(t)
			d.setup(t)
			d.exec(t, "DROP TABLE dst")
			d.exec(t, `CREATE TABLE dst (person_id TEXT PRIMARY KEY, name TEXT, age INTEGER CONSTRAINT sane_age CHECK (age < 100), label TEXT)`)
			d.person(t, "p1", "Ana", 9, "a", 1, 1)
			d.person(t, "p2", "Bo", 150, "b", 1, 2)
			d.person(t, "p3", "Cy", 4, "a", 1, 3)
			dep := open(t, d, t.TempDir(), &clock{t: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)})
			res := sync(t, dep)
			if diff := cmp.Diff([]string{"p1|Ana|9|Alpha", "p3|Cy|4|Alpha"}, d.rows(t)); diff != "" {
				t.Fatalf("rows (-want +got):\n%s", diff)
			}
			if res.Counts.Created != 2 || res.Counts.Failed != 1 {
				t.Errorf("counts %+v, want 2 created and 1 failed", res.Counts)
			}
			fails, err := dep.State.Failures(context.Background(), "people")
			if err != nil {
				t.Fatal(err)
			}
			if len(fails) != 1 || fails[0].RecordKey != "p2" || !strings.Contains(fails[0].LastError, "sane_age") || strings.Contains(fails[0].LastError, "150") {
				t.Errorf("failures %+v, want p2 refused by sane_age, without its value", fails)
			}
		})
	}
}

// TestTarget_LeaveFlagged: with on_leave flag, a person who is disabled
// keeps their row with the flag column set, and comes back unflagged.
func TestTarget_LeaveFlagged(t *testing.T) {
	for _, tc := range databases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.open(t)
			d.setup(t)
			d.exec(t, "DROP TABLE dst")
			d.exec(t, `CREATE TABLE dst (person_id TEXT PRIMARY KEY, name TEXT, age INTEGER, label TEXT, gone BOOLEAN NOT NULL DEFAULT FALSE)`)
			d.person(t, "p1", "Ana", 9, "a", 1, 1)
			d.person(t, "p2", "Bo", 12, "b", 1, 2)
			plan, err := spec.Load("testdata/people-flag", spec.Options{Cwd: "."})
			if err != nil {
				t.Fatal(err)
			}
			c := &clock{t: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)}
			dep, err := wire.Open(plan, wire.Options{StatePath: filepath.Join(t.TempDir(), "state.db"), Secrets: secrets{"DB_DSN": d.dsn}, Clock: c})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { dep.Close() })
			flags := func() string {
				var out []string
				r, err := d.db.Query("SELECT person_id, CASE WHEN gone THEN 'gone' ELSE 'here' END FROM dst ORDER BY person_id")
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				for r.Next() {
					var id, g string
					r.Scan(&id, &g)
					out = append(out, id+" "+g)
				}
				return strings.Join(out, ", ")
			}
			sync(t, dep)
			d.person(t, "p2", "Bo", 12, "b", 0, 70)
			c.t = c.t.Add(time.Hour)
			sync(t, dep)
			if got := flags(); got != "p1 here, p2 gone" {
				t.Errorf("after disabling p2: %s, want p1 here, p2 gone", got)
			}
			d.person(t, "p2", "Bo", 13, "b", 1, 71)
			c.t = c.t.Add(time.Hour)
			sync(t, dep)
			if got := flags(); got != "p1 here, p2 here" {
				t.Errorf("after enabling p2 again: %s, want both here", got)
			}
		})
	}
}
