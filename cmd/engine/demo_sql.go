package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"casesync/engine"
	"casesync/internal/sandbox"

	_ "modernc.org/sqlite" // the demo's dashboard databases
)

// The demo's databases: each sql connector of a deployment writes into a
// SQLite file of its own, created from the deployment's schema.sql, with
// its DSN secret pointing at it. The real systems' reference tables the
// deployment reads are filled from the fakes (the ONA dashboard's
// locations_lookup from the fake Primero's districts).

// demoDB is one sql connector's demo database.
type demoDB struct {
	connector, path string
}

// demoSecrets are the sandbox's credentials plus the demo databases' DSNs.
type demoSecrets struct {
	sb   *sandbox.Sandbox
	dsns map[string]string
}

func (s demoSecrets) Secret(name string) (string, bool) {
	if v, ok := s.dsns[name]; ok {
		return v, true
	}
	return s.sb.Secret(name)
}

// demoDatabases creates a database for each sql connector of plan beside
// the state file at statePath.
func demoDatabases(plan *engine.Plan, dir, statePath string, sb *sandbox.Sandbox) ([]demoDB, map[string]string, error) {
	var dbs []demoDB
	dsns := map[string]string{}
	var names []string
	for name, c := range plan.Connectors {
		if c.Kind == "sql" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		c := plan.Connectors[name]
		path := strings.TrimSuffix(statePath, ".db") + "-" + name + ".sqlite"
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, nil, err
		}
		if err := createDemoDB(path, filepath.Join(dir, "schema.sql"), sb); err != nil {
			return nil, nil, fmt.Errorf("%s: demo database for %s: %w", plan.Name, name, err)
		}
		dsns[c.Spec.SQL.DSN.Secret] = "sqlite:" + path
		dbs = append(dbs, demoDB{connector: name, path: path})
	}
	return dbs, dsns, nil
}

func createDemoDB(path, schema string, sb *sandbox.Sandbox) error {
	db, err := sql.Open("sqlite", path)
	if err != nil {
		return err
	}
	defer db.Close()
	ddl, err := os.ReadFile(schema)
	if err != nil {
		return fmt.Errorf("the deployment ships no schema.sql for the demo to create its tables: %w", err)
	}
	if _, err := db.Exec(string(ddl)); err != nil {
		return fmt.Errorf("schema.sql: %w", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'locations_lookup'`).Scan(&n); err != nil || n == 0 {
		return err
	}
	return seedLocations(db, sb, false)
}

// seedLocations fills locations_lookup with the fake Primero's districts,
// by the code Primero stores (no leading zero) and the NCDD codes with it.
// dollar: the database numbers its parameters ($1, PostgreSQL).
func seedLocations(db *sql.DB, sb *sandbox.Sandbox, dollar bool) error {
	insert := `INSERT INTO locations_lookup (code, province, province_code, district, district_code) VALUES (?, ?, ?, ?, ?)`
	if dollar {
		insert = `INSERT INTO locations_lookup (code, province, province_code, district, district_code) VALUES ($1, $2, $3, $4, $5)`
	}
	locs := sb.Primero.Locations()
	names := map[string]string{}
	for _, l := range locs {
		names[l.Code] = l.Name
	}
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, l := range locs {
		if l.Type != "district" {
			continue
		}
		province := fmt.Sprintf("%02s", l.Parent)
		if _, err := tx.Exec(insert, l.Code, names[l.Parent], province, l.Name, province+l.Code[len(l.Parent):]); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// printDemoRows shows what the deployment wrote into each demo database:
// per table its row count and first rows, without the columns the
// deployment classifies as personal (pii, health, protection).
func printDemoRows(ctx context.Context, w io.Writer, plan *engine.Plan, dbs []demoDB) error {
	for _, d := range dbs {
		db, err := sql.Open("sqlite", d.path)
		if err != nil {
			return err
		}
		defer db.Close()
		fmt.Fprintf(w, "  rows written into %s (%s):\n", d.connector, d.path)
		for _, table := range demoTables(plan, d.connector) {
			var n int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				return err
			}
			fmt.Fprintf(w, "    %s: %d rows\n", table, n)
			cols, err := demoColumns(ctx, db, table)
			if err != nil {
				return err
			}
			// As stored: the driver would turn DATE and TIMESTAMP text
			// into times.
			casts := make([]string, len(cols))
			for i, c := range cols {
				casts[i] = fmt.Sprintf("CAST(%q AS TEXT)", c)
			}
			rows, err := db.QueryContext(ctx, "SELECT "+strings.Join(casts, ", ")+" FROM "+table+" ORDER BY rowid LIMIT 3")
			if err != nil {
				return err
			}
			for rows.Next() {
				vals := make([]any, len(cols))
				ptrs := make([]any, len(cols))
				for i := range vals {
					ptrs[i] = &vals[i]
				}
				if err := rows.Scan(ptrs...); err != nil {
					rows.Close()
					return err
				}
				var parts []string
				for i, c := range cols {
					if cl := plan.Spec.Sensitivity[c]; cl != "" && cl != "none" || vals[i] == nil {
						continue
					}
					parts = append(parts, fmt.Sprintf("%s=%v", c, vals[i]))
				}
				fmt.Fprintf(w, "      %s\n", strings.Join(parts, " "))
			}
			rows.Close()
		}
	}
	return nil
}

func demoColumns(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+table+" WHERE 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return rows.Columns()
}

// demoTables lists the tables the deployment's pipelines write through
// connector, in pipeline order.
func demoTables(plan *engine.Plan, connector string) []string {
	var out []string
	seen := map[string]bool{}
	for _, name := range plan.Order {
		p := plan.Pipelines[name]
		if u := p.Spec.Upsert.SQL; u != nil && p.Upsert.Connector == connector && !seen[u.Table] {
			seen[u.Table] = true
			out = append(out, u.Table)
		}
	}
	return out
}
