package sql_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"casesync/engine"
	"casesync/engine/spec"
	"casesync/internal/wire"
)

// BenchmarkBatchFlush: one page of 500 rows of 20 columns upserted in one
// transaction, on SQLite and PostgreSQL (the write stage's share of a
// page); rows/s is reported.
func BenchmarkBatchFlush(b *testing.B) {
	for _, tc := range databases {
		b.Run(tc.name, func(b *testing.B) {
			d := tc.open(b)
			cols := ""
			for i := 0; i < 19; i++ {
				cols += fmt.Sprintf(", c%d TEXT", i)
			}
			if _, err := d.db.Exec("CREATE TABLE wide (id TEXT PRIMARY KEY" + cols + ")"); err != nil {
				b.Fatal(err)
			}
			plan, err := spec.Load("testdata/wide", spec.Options{Cwd: "."})
			if err != nil {
				b.Fatal(err)
			}
			conns, err := wire.Connect(plan, wire.Options{Secrets: secrets{"DB_DSN": d.dsn}})
			if err != nil {
				b.Fatal(err)
			}
			defer conns.Close()
			tgt, err := conns.Target(plan.Pipelines["wide"])
			if err != nil {
				b.Fatal(err)
			}
			bt := tgt.(engine.BatchTarget)
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			rows := 0
			for i := 0; i < b.N; i++ {
				batch := bt.Batch()
				for r := 0; r < 500; r++ {
					row := map[string]any{"id": fmt.Sprintf("r%d", r+(i%20)*500)}
					for c := 0; c < 19; c++ {
						row[fmt.Sprintf("c%d", c)] = fmt.Sprintf("value %d %d", i, c)
					}
					if err := batch.Upsert(row["id"].(string), row, nil); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				rows += 500
			}
			b.ReportMetric(float64(rows)/time.Since(start).Seconds(), "rows/s")
		})
	}
}
