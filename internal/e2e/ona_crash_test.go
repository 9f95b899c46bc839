//go:build unix

package e2e

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"casesync/internal/sandbox"
	"casesync/internal/testenv"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// TestONA_CrashSafety kills `engine sync ona_dashboard` (one listing of
// Primero feeding the ona_cases and ona_services branches) with SIGKILL in
// the middle of a page, between a page's transaction into the dashboard
// and its commit to the state, and around the commits, restarts it until a
// run completes, and compares the dashboard tables with a clean run's: the
// same rows, nothing lost, nothing twice. The dashboard's upserts are
// INSERT … ON CONFLICT, so writing a page again after a crash changes
// nothing.
func TestONA_CrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the engine binary and runs it a dozen times")
	}
	bin := runnerBuildEngine(t)
	root := testenv.RepoRoot(t)
	seed := sandbox.Options{Cases: 1200, Seed: 7}
	// 1200 cases are twelve listing pages (100 a page); each page goes
	// through ona_cases and ona_services side by side, each committing a
	// page while it decides the next, so a process counts 200 source
	// records, up to two writes and two page commits per listing page, and
	// which branch a count lands in varies from run to run.
	// Points count within one process, and a page written but not
	// committed before a crash is read and written again by the next
	// (pages already committed are read again too, and skipped). So: cases
	// page 4 mid-way; cases page 4 written, not committed; cases 4,
	// services 4 and cases 5 committed, services 5 written, not committed;
	// cases page 6 mid-way; cases 6 committed, services 6 and cases 7
	// too, services 7 written and killed before its commit.
	points := []string{"mid-page:650", "after-write:1", "after-write:4", "mid-page:1050", "before-commit:14"}
	dbs := []struct {
		name string
		open func(*testing.T) (dsn string, db *sql.DB)
	}{
		{"sqlite", func(t *testing.T) (string, *sql.DB) {
			path := filepath.Join(t.TempDir(), "ona.db")
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return "sqlite:" + path, db
		}},
		{"postgres", func(t *testing.T) (string, *sql.DB) {
			dsn := testenv.PostgresDSN(t)
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return dsn, db
		}},
	}
	for _, d := range dbs {
		t.Run(d.name, func(t *testing.T) {
			run := func(crashAt []string) (cases, services []string, kills int) {
				dsn, db := d.open(t)
				schema, err := os.ReadFile(filepath.Join(root, "specs/cambodia-ona/schema.sql"))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := db.Exec(string(schema)); err != nil {
					t.Fatal(err)
				}
				sb := runnerSandbox(t, seed)
				c := &crashChild{t: t, bin: bin, dir: filepath.Join(root, "specs/cambodia-ona"), state: filepath.Join(t.TempDir(), "state.db"), sb: sb,
					pipeline: "ona_dashboard", secrets: []string{"PRIMERO_USER", "PRIMERO_PASSWORD"}, extra: "ONA_DSN=" + dsn + "\n",
					args: []string{"--base-url", "primero=" + sb.URLs["primero"]}, timeout: 120 * time.Second, failedRecords: true}
				for _, p := range crashAt {
					if c.run(p) {
						kills++
					} else {
						t.Logf("%s: not reached, the run completed", p)
					}
				}
				if c.run("") {
					t.Fatal("killed without a crash point")
				}
				return onaRows(t, db, "cases", "case_id"), onaRows(t, db, "services", "unique_id"), kills
			}
			wantCases, wantServices, _ := run(nil)
			if len(wantCases) < 500 || len(wantServices) < 100 {
				t.Fatalf("clean run wrote %d cases and %d services, want a few pages of each", len(wantCases), len(wantServices))
			}
			gotCases, gotServices, kills := run(points)
			if kills < len(points) {
				t.Errorf("only %d of %d crash points were reached", kills, len(points))
			}
			if diff := cmp.Diff(wantCases, gotCases); diff != "" {
				t.Errorf("cases after the crashes differ from a clean run's (-clean +crashed):\n%s", diff)
			}
			if diff := cmp.Diff(wantServices, gotServices); diff != "" {
				t.Errorf("services after the crashes differ from a clean run's (-clean +crashed):\n%s", diff)
			}
		})
	}
}

// onaRows reads a table as text lines, every column as text, by key.
func onaRows(t *testing.T, db *sql.DB, table, key string) []string {
	t.Helper()
	r, err := db.Query("SELECT * FROM " + table + " WHERE 1 = 0")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := r.Columns()
	r.Close()
	casts := make([]string, len(cols))
	for i, c := range cols {
		// last_updated_date is the case's own time; service rows too.
		casts[i] = "COALESCE(CAST(" + c + " AS TEXT), '<null>')"
	}
	r, err = db.Query("SELECT " + strings.Join(casts, " || '|' || ") + " FROM " + table + " ORDER BY " + key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var s string
		if err := r.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}
