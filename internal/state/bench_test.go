package state

import (
	"fmt"
	"testing"
	"time"

	"casesync/engine"
)

// BenchmarkStore_CommitPage commits pages of 100 outcomes; one op is one
// outcome (a page commits on every 100th), so allocs/op is per record. One
// outcome in ten fails and every fifth carries a link.
func BenchmarkStore_CommitPage(b *testing.B) {
	s := openTest(b)
	ctx := b.Context()
	run := startRun(b, s, "p")
	const perPage = 100
	outs := make([]engine.Outcome, 0, perPage)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		key := fmt.Sprintf("case-%07d", n%50000)
		o := engine.Outcome{RecordKey: key, Action: engine.ActionUpdated, PayloadHash: "3f2a91c04b7e", TargetID: "g-" + key, Transaction: "t1"}
		switch {
		case n%10 == 9:
			o = failed(key, "http_503")
		case n%5 == 0:
			o.Link = &engine.Link{SystemA: "primero", IDA: key, SystemB: "oscar", IDB: "g-" + key}
		}
		outs = append(outs, o)
		n++
		if len(outs) == perPage {
			c := engine.PageCommit{RunID: run, Pipeline: "p", Outcomes: outs, Now: t0.Add(time.Duration(n) * time.Millisecond), Cursor: ptr(key)}
			if err := s.CommitPage(ctx, c); err != nil {
				b.Fatal(err)
			}
			outs = outs[:0]
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "outcomes/s")
}

// BenchmarkStore_CommitPageAllWritten is the page of a run where every
// record is written, as a dashboard table's first load (engine bench
// --scenario sql): each outcome creates a row, links it and remembers its
// source version; no failure, so the retry queue stays empty.
func BenchmarkStore_CommitPageAllWritten(b *testing.B) {
	s := openTest(b)
	ctx := b.Context()
	run := startRun(b, s, "p")
	const perPage = 100
	outs := make([]engine.Outcome, 0, perPage)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		key := fmt.Sprintf("case-%07d", n)
		outs = append(outs, engine.Outcome{RecordKey: key, Action: engine.ActionCreated, PayloadHash: "3f2a91c04b7e", TargetID: key,
			SourceKey: key, SourceVersion: "2025-06-01T00:00:00Z",
			Link: &engine.Link{SystemA: "primero", IDA: key, SystemB: "ona", IDB: key}})
		n++
		if len(outs) == perPage {
			c := engine.PageCommit{RunID: run, Pipeline: "p", Outcomes: outs, Now: t0.Add(time.Duration(n) * time.Millisecond), Cursor: ptr(key)}
			if err := s.CommitPage(ctx, c); err != nil {
				b.Fatal(err)
			}
			outs = outs[:0]
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "outcomes/s")
}
