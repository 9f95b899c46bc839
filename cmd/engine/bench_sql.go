package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	sqlconn "casesync/connectors/sql"
	"casesync/engine"
	"casesync/engine/spec"

	_ "github.com/jackc/pgx/v5/stdlib" // the bench's PostgreSQL
)

// The sql scenario: specs/cambodia-ona (ona_cases, then ona_services)
// from N fake Primero cases into a dashboard database, by default the
// PostgreSQL server of $CASESYNC_TEST_POSTGRES_DSN (.ci/postgres.sh starts
// one). Rows are counted by the database itself; rows/s is rows written
// over the engine process's wall time, which includes reading and mapping
// the cases.

// benchDB is one bench run's dashboard database: a schema of its own on
// the PostgreSQL server, or a SQLite file.
type benchDB struct {
	dsn, what string
	db        *sql.DB
	pg        bool
	drop      func()
}

func openBenchDB(ctx context.Context, pgDSN, tmp string) (*benchDB, error) {
	if pgDSN == "" {
		path := filepath.Join(tmp, "ona.sqlite")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			return nil, err
		}
		return &benchDB{dsn: "sqlite:" + path, what: "SQLite " + path, db: db, drop: func() {}}, nil
	}
	admin, err := sql.Open("pgx", pgDSN)
	if err != nil {
		return nil, err
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	u, err := url.Parse(pgDSN)
	if err != nil {
		admin.Close()
		return nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		admin.Close()
		return nil, err
	}
	drop := func() {
		db.Close()
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		admin.Close()
	}
	return &benchDB{dsn: u.String(), what: "PostgreSQL (" + u.Host + ")", db: db, pg: true, drop: drop}, nil
}

func (d *benchDB) rows(ctx context.Context, table string) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n)
	return n, err
}

// sqlDeployment is the deployment the sql scenario runs.
const sqlDeployment = "specs/cambodia-ona"

func (e *benchEnv) sqlTarget(ctx context.Context, _ *engine.Plan) error {
	plan, err := spec.Load(sqlDeployment, spec.Options{})
	if err != nil {
		return fmt.Errorf("load %s (run the bench from a checkout): %w", sqlDeployment, err)
	}
	pgDSN := e.f.postgres
	fmt.Fprintf(e.w, "sql target (%s: ona_dashboard, one listing feeding ona_cases and ona_services; latency 0; engine process only)\n", sqlDeployment)
	if pgDSN == "" {
		fmt.Fprintln(e.w, "  no --postgres and no $CASESYNC_TEST_POSTGRES_DSN: measuring SQLite instead (.ci/postgres.sh starts a PostgreSQL)")
	}
	fmt.Fprintf(e.w, "  %-8s %-10s %-10s %-10s %-12s %-10s %-14s %s\n", "cases", "rows", "cases", "services", "rows/s", "wall", "cpu µs/row", "peak RSS / heap")
	for _, n := range e.ns {
		if err := e.sqlRun(ctx, plan, pgDSN, n); err != nil {
			return err
		}
	}
	fmt.Fprintln(e.w)
	return nil
}

func (e *benchEnv) sqlRun(ctx context.Context, plan *engine.Plan, pgDSN string, n int) error {
	// The MoSVY instance the deployment reads: the mixed seed's UNHCR
	// cases would fail as lookup misses and measure the failure path.
	sb, err := e.startWith(n, 0, true)
	if err != nil {
		return err
	}
	defer sb.Close()
	tmp, err := os.MkdirTemp("", "casesync-bench-sql-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	db, err := openBenchDB(ctx, pgDSN, tmp)
	if err != nil {
		return err
	}
	defer db.drop()
	ddl, err := os.ReadFile(filepath.Join(sqlDeployment, "schema.sql"))
	if err != nil {
		return err
	}
	if _, err := db.db.ExecContext(ctx, string(ddl)); err != nil {
		return fmt.Errorf("schema.sql: %w", err)
	}
	if err := seedLocations(db.db, sb, db.pg); err != nil {
		return fmt.Errorf("locations_lookup: %w", err)
	}
	var dsnSecret string
	for _, c := range plan.Connectors {
		if c.Kind == "sql" {
			dsnSecret = c.Spec.SQL.DSN.Secret
		}
	}
	res, err := e.childWith(ctx, sb, plan, filepath.Join(tmp, "state.db"),
		childOpts{dir: sqlDeployment, pipeline: "ona_dashboard", chain: true, env: []string{dsnSecret + "=" + db.dsn}})
	if err != nil {
		return err
	}
	cases, err := db.rows(ctx, "cases")
	if err != nil {
		return err
	}
	services, err := db.rows(ctx, "services")
	if err != nil {
		return err
	}
	ins, upd, err := e.sqlWrites(ctx, plan, db, dsnSecret)
	if err != nil {
		return fmt.Errorf("write rate: %w", err)
	}
	rows := cases + services
	rate := float64(rows) / res.wall.Seconds()
	rss := float64(res.mem.PeakRSSBytes) / (1 << 20)
	heap := float64(res.mem.PeakHeapBytes) / (1 << 20)
	cpuRow := float64(res.cpu.Microseconds()) / float64(max(rows, 1))
	fmt.Fprintf(e.w, "  %-8d %-10d %-10d %-10d %-12.0f %-10s %-14.0f %.1f MB / %.1f MB   writes alone: %.0f rows/s inserting, %.0f updating\n",
		n, rows, cases, services, rate, res.wall.Round(time.Millisecond), cpuRow, rss, heap, ins, upd)
	// The target (issue 17) is end to end: source, mapping, state and
	// rows; the page transactions alone are reported beside it.
	e.lines = append(e.lines, fmt.Sprintf("sql %d cases into %s: %d rows in %s end to end, %.0f rows/s (target ≥ 20,000: %s), engine CPU %.0f µs a row; the target's page transactions alone %.0f rows/s inserting, %.0f updating; peak RSS %.1f MB (target < 60 MB: %s)",
		n, strings.SplitN(db.what, " ", 2)[0], rows, res.wall.Round(time.Millisecond), rate, verdict(rate >= 20000), cpuRow, ins, upd, rss, verdict(rss < 60)))
	return nil
}

// sqlWrites measures the sql target alone on the rows the run wrote: each
// table is read back, emptied, and written again through the connector's
// batches of 500 rows (inserts), then once more (updates: every row
// exists, so ON CONFLICT DO UPDATE). No source, mapping or state is in
// the timed part.
func (e *benchEnv) sqlWrites(ctx context.Context, plan *engine.Plan, db *benchDB, dsnSecret string) (insert, update float64, err error) {
	conns := sqlconn.NewPool(plan, benchSecrets{dsnSecret: db.dsn})
	defer conns.Close()
	var rows int
	var tIns, tUpd time.Duration
	for _, name := range plan.Order {
		p := plan.Pipelines[name]
		u := p.Spec.Upsert.SQL
		if u == nil {
			continue
		}
		tgt, err := conns.Target(p)
		if err != nil {
			return 0, 0, err
		}
		bt, ok := tgt.(engine.BatchTarget)
		if !ok {
			return 0, 0, fmt.Errorf("%s: the target does not write in batches", name)
		}
		recs, err := readTable(ctx, db.db, u.Table)
		if err != nil {
			return 0, 0, err
		}
		if _, err := db.db.ExecContext(ctx, "DELETE FROM "+u.Table); err != nil {
			return 0, 0, err
		}
		for pass := 0; pass < 2; pass++ {
			start := time.Now()
			for i := 0; i < len(recs); i += 500 {
				b := bt.Batch()
				for j, r := range recs[i:min(i+500, len(recs))] {
					if err := b.Upsert(fmt.Sprint(i+j), r, nil); err != nil {
						return 0, 0, err
					}
				}
				if err := b.Flush(ctx); err != nil {
					return 0, 0, err
				}
			}
			if pass == 0 {
				tIns += time.Since(start)
			} else {
				tUpd += time.Since(start)
			}
		}
		rows += len(recs)
	}
	if tIns == 0 || tUpd == 0 {
		return 0, 0, nil
	}
	return float64(rows) / tIns.Seconds(), float64(rows) / tUpd.Seconds(), nil
}

type benchSecrets map[string]string

func (s benchSecrets) Secret(n string) (string, bool) { v, ok := s[n]; return v, ok }

// readTable reads a table's rows as column → value, in the shapes a
// payload has (text, numbers, null).
func readTable(ctx context.Context, db *sql.DB, table string) ([]map[string]any, error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			switch v := vals[i].(type) {
			case []byte:
				m[c] = string(v)
			case time.Time:
				m[c] = v.UTC().Format("2006-01-02 15:04:05")
			case int64:
				m[c] = int(v)
			default:
				m[c] = v
			}
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
