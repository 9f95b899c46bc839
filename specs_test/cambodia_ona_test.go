package specs_test

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
	"casesync/internal/sandbox"
	"casesync/internal/testenv"
	"casesync/internal/wire"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// The cambodia-ona deployment (specs/cambodia-ona) against the fake
// Primero, writing into SQLite and into a real PostgreSQL server: the
// golden rows in testdata/cambodia-ona were written by hand.

// onaDB is the dashboard database of one test.
type onaDB struct {
	dsn string
	db  *sql.DB
}

var onaDatabases = []struct {
	name string
	open func(*testing.T) onaDB
}{
	{"sqlite", func(t *testing.T) onaDB {
		path := filepath.Join(t.TempDir(), "ona.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return onaDB{dsn: "sqlite:" + path, db: db}
	}},
	{"postgres", func(t *testing.T) onaDB {
		dsn := testenv.PostgresDSN(t)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return onaDB{dsn: dsn, db: db}
	}},
}

// exec runs a SQL file (both drivers take several statements at once).
func (d onaDB) exec(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.Exec(string(b)); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// rows reads a table, every value as text (nil for null), ordered by key.
func (d onaDB) rows(t *testing.T, table, key string) []map[string]any {
	t.Helper()
	r, err := d.db.Query("SELECT * FROM " + table + " WHERE 1 = 0")
	if err != nil {
		t.Fatal(err)
	}
	cols, err := r.Columns()
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	casts := make([]string, len(cols))
	for i, c := range cols {
		casts[i] = "CAST(" + c + " AS TEXT)"
	}
	r, err = d.db.Query("SELECT " + strings.Join(casts, ", ") + " FROM " + table + " ORDER BY " + key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := []map[string]any{}
	for r.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]any{}
		for i, c := range cols {
			if vals[i].Valid {
				row[c] = vals[i].String
			} else {
				row[c] = nil
			}
		}
		out = append(out, row)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// onaSecrets are the sandbox's credentials plus the dashboard's DSN.
type onaSecrets struct {
	sb  *sandbox.Sandbox
	dsn string
}

func (s onaSecrets) Secret(name string) (string, bool) {
	if name == "ONA_DSN" {
		return s.dsn, true
	}
	return s.sb.Secret(name)
}

// onaEnv is the deployment wired to a fake Primero and a dashboard database.
type onaEnv struct {
	t   *testing.T
	sb  *sandbox.Sandbox
	db  onaDB
	dep *wire.Deployment
}

func startONA(t *testing.T, db onaDB, opts sandbox.Options) *onaEnv {
	t.Helper()
	root := testenv.RepoRoot(t)
	db.exec(t, filepath.Join(root, "specs/cambodia-ona/schema.sql"))
	db.exec(t, filepath.Join(root, "specs_test/testdata/cambodia-ona/locations.sql"))
	sb, err := sandbox.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Close)
	plan := load(t, "specs/cambodia-ona").WithBaseURLs(map[string]string{"primero": sb.URLs["primero"]})
	dep, err := wire.Open(plan, wire.Options{StatePath: filepath.Join(t.TempDir(), "state.db"), Secrets: onaSecrets{sb, db.dsn}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dep.Close() })
	return &onaEnv{t: t, sb: sb, db: db, dep: dep}
}

func (e *onaEnv) sync(name string, opts engine.SyncOptions) *engine.RunResult {
	e.t.Helper()
	res, err := e.dep.Runner.Sync(ctx(e.t), name, opts)
	if err != nil {
		e.t.Fatalf("sync %s: %v", name, err)
	}
	return res
}

// pass runs the deployment's pipeline, one listing feeding both branches,
// and returns each branch's run.
func (e *onaEnv) pass(opts engine.SyncOptions) (cases, services *engine.RunResult) {
	e.t.Helper()
	res, err := e.dep.Runner.SyncGroup(ctx(e.t), "ona_dashboard", opts)
	if err != nil {
		e.t.Fatalf("sync ona_dashboard: %v", err)
	}
	for _, r := range res {
		switch r.Pipeline {
		case "ona_cases":
			cases = r
		case "ona_services":
			services = r
		}
	}
	if cases == nil || services == nil {
		e.t.Fatalf("sync ona_dashboard ran %d branches, want ona_cases and ona_services", len(res))
	}
	return cases, services
}

func (e *onaEnv) tables() (cases, services []map[string]any) {
	return e.db.rows(e.t, "cases", "case_id"), e.db.rows(e.t, "services", "unique_id")
}

func onaGolden(t *testing.T) (cases, services []map[string]any, seed []map[string]any) {
	t.Helper()
	readJSON(t, "testdata/cambodia-ona/cases.golden.json", &cases)
	readJSON(t, "testdata/cambodia-ona/services.golden.json", &services)
	readJSON(t, "testdata/cambodia-ona/cases.json", &seed)
	return cases, services, seed
}

func sameRows(t *testing.T, what string, want, got []map[string]any) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s rows (-want +got):\n%s", what, diff)
	}
}

// TestONA_GoldenRows: the hand-written rows, including two cases whose
// display ids collide and two with empty display ids, are what the
// deployment writes; a rerun, and a rerun over the whole history, write
// nothing.
func TestONA_GoldenRows(t *testing.T) {
	for _, tc := range onaDatabases {
		t.Run(tc.name, func(t *testing.T) {
			wantCases, wantServices, seed := onaGolden(t)
			e := startONA(t, tc.open(t), sandbox.Options{CasesFrom: seed})
			rc, rs := e.pass(engine.SyncOptions{})
			gotCases, gotServices := e.tables()
			sameRows(t, "cases", wantCases, gotCases)
			sameRows(t, "services", wantServices, gotServices)
			if rc.Counts.Created != 5 || rc.Counts.Failed != 0 || rc.Reasons["disabled"] != 1 || rc.Reasons["not_an_indicator_case"] != 1 {
				t.Errorf("ona_cases: %+v reasons %v, want 5 created, one disabled and one 18-year-old skipped", rc.Counts, rc.Reasons)
			}
			if rs.Counts.Created != 4 || rs.Counts.Failed != 0 {
				t.Errorf("ona_services: %+v, want 4 created", rs.Counts)
			}
			// A row's id is its key: the records row holds it, and no link
			// repeats it (docs/architecture.md).
			written := map[string]bool{}
			for _, c := range wantCases {
				written[c["case_id"].(string)] = true
			}
			for _, c := range seed {
				key, id := c["id"].(string), c["case_id"].(string)
				if !written[id] {
					continue
				}
				if rec, ok, err := e.dep.State.Record(ctx(t), "ona_cases", key); err != nil || !ok || rec.TargetID != id {
					t.Errorf("records row of case %s: %+v, %v, %v; want target id %s", key, rec, ok, err, id)
				}
				if got, ok, err := e.dep.State.FindLink(ctx(t), "primero", key, "ona"); err != nil || ok {
					t.Errorf("link of case %s: %q, %v, %v; want none", key, got, ok, err)
				}
			}

			for _, o := range []engine.SyncOptions{{}, {Since: "2024-01-01T00:00:00Z"}} {
				rc, rs := e.pass(o)
				if rc.Writes["ona"]+rs.Writes["ona"] != 0 || rc.Counts.Failed+rs.Counts.Failed != 0 {
					t.Errorf("rerun %+v wrote %v + %v rows (%+v, %+v), want none", o, rc.Writes, rs.Writes, rc.Counts, rs.Counts)
				}
			}
			gotCases, gotServices = e.tables()
			sameRows(t, "cases after reruns", wantCases, gotCases)
			sameRows(t, "services after reruns", wantServices, gotServices)
		})
	}
}

// TestONA_ChangesAndLeaving: a changed case updates exactly its row; a
// case that turns 18, a disabled case and a deleted service leave the
// dashboard (deleted, as specs/cambodia-ona/cases.cue says and why).
func TestONA_ChangesAndLeaving(t *testing.T) {
	for _, tc := range onaDatabases {
		t.Run(tc.name, func(t *testing.T) {
			wantCases, wantServices, seed := onaGolden(t)
			e := startONA(t, tc.open(t), sandbox.Options{CasesFrom: seed})
			e.pass(engine.SyncOptions{})
			byCase := map[string]map[string]any{}
			for _, c := range wantCases {
				byCase[c["case_id"].(string)] = c
			}
			id := func(i int) string { return seed[i]["id"].(string) }
			caseID := func(i int) string { return seed[i]["case_id"].(string) }
			stamp := func(i int) string {
				c, _ := e.sb.Primero.Case(id(i))
				s := strings.Replace(c["last_updated_at"].(string), "T", " ", 1)
				return s[:19]
			}

			// Case 2 is now 11: its row, and nothing else.
			e.sb.Primero.Touch(id(1), map[string]any{"age": 11})
			rc, rs := e.pass(engine.SyncOptions{})
			if rc.Writes["ona"] != 1 || rc.Counts.Updated != 1 || rs.Writes["ona"] != 0 {
				t.Errorf("one changed case: cases wrote %d (%+v), services %d, want 1 and 0", rc.Writes["ona"], rc.Counts, rs.Writes["ona"])
			}
			byCase[caseID(1)]["age"], byCase[caseID(1)]["last_updated_date"] = "11", stamp(1)
			gotCases, _ := e.tables()
			sameRows(t, "cases after a change", wantCases, gotCases)

			// Case 5 turns 18, case 3 is disabled, case 1 loses a service.
			e.sb.Primero.Touch(id(4), map[string]any{"age": 18})
			e.sb.Primero.Touch(id(2), map[string]any{"record_state": false})
			e.sb.Primero.Touch(id(0), map[string]any{"services_section": []any{map[string]any{"unique_id": "5e000001-0000-4000-8000-000000000002", "_destroy": true}}})
			rc, rs = e.pass(engine.SyncOptions{})
			var keepCases []map[string]any
			for _, c := range wantCases {
				if c["case_id"] != caseID(4) && c["case_id"] != caseID(2) {
					keepCases = append(keepCases, c)
				}
			}
			byCase[caseID(0)]["last_updated_date"] = stamp(0)
			var keepServices []map[string]any
			for _, s := range wantServices {
				if s["case_id"] != caseID(4) && s["unique_id"] != "5e000001-0000-4000-8000-000000000002" {
					keepServices = append(keepServices, s)
				}
			}
			gotCases, gotServices := e.tables()
			sameRows(t, "cases after leaving", keepCases, gotCases)
			sameRows(t, "services after leaving", keepServices, gotServices)
			if rc.Counts.Failed+rs.Counts.Failed != 0 {
				t.Errorf("failures: %+v %+v", rc.Counts, rs.Counts)
			}

			// Still out on the next pass over the whole history: nothing
			// written, nothing removed again.
			rc, rs = e.pass(engine.SyncOptions{Since: "2024-01-01T00:00:00Z"})
			if rc.Writes["ona"]+rs.Writes["ona"] != 0 || rc.Counts.Updated+rs.Counts.Updated != 0 {
				t.Errorf("rerun after leaving: %+v %+v, want nothing written or removed", rc.Counts, rs.Counts)
			}
		})
	}
}

// TestONA_WindowOnEveryPage: a window of several pages is read once for
// both tables, with the same closed window on every page request, and each
// branch's cursor becomes the run's start only after the last page.
func TestONA_WindowOnEveryPage(t *testing.T) {
	db := onaDatabases[0].open(t)
	e := startONA(t, db, sandbox.Options{Cases: 1200, Seed: 3})
	e.sb.Primero.ResetRequests()
	rc, _ := e.pass(engine.SyncOptions{})
	var windows []string
	pages := map[string]bool{}
	for _, r := range e.sb.Primero.Requests() {
		if r.Method != "GET" || r.Path != "/api/v2/cases" {
			continue
		}
		q, err := url.ParseQuery(r.Query)
		if err != nil {
			t.Fatal(err)
		}
		windows = append(windows, q.Get("last_updated_at"))
		pages[q.Get("page")] = true
	}
	if len(windows) < 3 {
		t.Fatalf("%d page requests, want at least 3 (1200 cases, 100 a page)", len(windows))
	}
	from, to, ok := strings.Cut(windows[0], "..")
	if !ok || from != "2024-01-04T03:45:25Z" || to == "" {
		t.Fatalf("first page's window %q, want the initial cursor to the run's start", windows[0])
	}
	for i, w := range windows {
		if w != windows[0] {
			t.Errorf("page request %d carries window %q, want %q", i+1, w, windows[0])
		}
	}
	if !pages["1"] || !pages["2"] || !pages["3"] {
		t.Errorf("pages requested %v, want 1, 2 and 3", pages)
	}
	if len(windows) != len(pages) {
		t.Errorf("%d page requests for %d pages: both tables should share one listing", len(windows), len(pages))
	}
	for _, branch := range []string{"ona_cases", "ona_services"} {
		cur, ok, err := e.dep.State.Cursor(context.Background(), branch)
		if err != nil || !ok || !strings.HasPrefix(cur, to[:len("2006-01-02T15:04:05")]) {
			t.Errorf("%s cursor %q (ok %v, %v), want the run's start %s", branch, cur, ok, err, to)
		}
	}
	if rc.Counts.Read != 1200 || rc.Counts.Failed != 0 && rc.Reasons["lookup_miss_ona_protection_concern"] != rc.Counts.Failed {
		t.Errorf("read %d, failed %d %v", rc.Counts.Read, rc.Counts.Failed, rc.Reasons)
	}
}

// TestONA_DemoSeed (issue 19.10): the demo's MoSVY Primero holds the
// option ids the label tables cover, so every case and service reaches the
// dashboard, protection concerns and disability types labelled, and a
// second pass writes nothing. The mixed seed's UNHCR cases still fail as
// lookup misses: the demo changed its inputs, not what the spec does with
// an unlabelled value (also pinned by the spec's tests).
func TestONA_DemoSeed(t *testing.T) {
	db := onaDatabases[0].open(t)
	e := startONA(t, db, sandbox.Options{Cases: 240, Seed: 1, Consistent: true, MoSVY: true})
	rc, rs := e.pass(engine.SyncOptions{})
	if rc.Counts.Failed+rs.Counts.Failed != 0 || rc.Counts.Created == 0 || rs.Counts.Created == 0 {
		t.Fatalf("MoSVY seed: ona_cases %+v %v, ona_services %+v %v; want rows and no failure", rc.Counts, rc.Reasons, rs.Counts, rs.Reasons)
	}
	var concerns, disabled int
	if err := db.db.QueryRow(`SELECT count(protection_concerns), count(disabled) FROM cases`).Scan(&concerns, &disabled); err != nil {
		t.Fatal(err)
	}
	if concerns == 0 || disabled == 0 {
		t.Errorf("%d cases with protection concerns, %d with a disability type: the seed shows no label", concerns, disabled)
	}
	if rc, rs := e.pass(engine.SyncOptions{Since: "2024-01-01T00:00:00Z"}); rc.Writes["ona"]+rs.Writes["ona"] != 0 {
		t.Errorf("second pass wrote %v + %v rows", rc.Writes, rs.Writes)
	}

	mixed := startONA(t, onaDatabases[0].open(t), sandbox.Options{Cases: 40, Seed: 1, Consistent: true})
	rc, rs = mixed.pass(engine.SyncOptions{})
	if rc.Reasons["lookup_miss_ona_protection_concern"] == 0 || rs.Reasons["lookup_miss_ona_service_type"] == 0 {
		t.Errorf("mixed seed: ona_cases %v, ona_services %v; want the UNHCR cases' lookup misses", rc.Reasons, rs.Reasons)
	}
}
