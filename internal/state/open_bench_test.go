package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"casesync/engine"
)

// BenchmarkOpen measures opening a state file of 100,000 written records
// (outcomes, records, links): the lease, the read-only probe with SQLite's
// quick_check, the WAL switch and the migration check. It reports the file
// size beside the time, since quick_check reads every page.
//
//	go test -run '^$' -bench Open -benchtime 5x ./internal/state
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	run, err := s.StartRun(b.Context(), "p", "h", "bench", t0)
	if err != nil {
		b.Fatal(err)
	}
	hash := strings.Repeat("ab", 32)
	for pg := range 100 {
		c := engine.PageCommit{RunID: run, Pipeline: "p", Now: t0}
		for i := range 1000 {
			id := fmt.Sprintf("case-%06d", pg*1000+i)
			c.Outcomes = append(c.Outcomes, engine.Outcome{RecordKey: id, Action: engine.ActionCreated, TargetID: "t-" + id, PayloadHash: hash,
				Link: &engine.Link{SystemA: "primero", IDA: id, SystemB: "oscar", IDB: "t-" + id}})
		}
		if err := s.CommitPage(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		s, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(fi.Size())/(1<<20), "file_MB")
}
