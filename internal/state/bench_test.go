package state

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"casesync/engine"
)

// BenchmarkStore_CommitPage commits pages of 100 outcomes; one op is one
// outcome (a page commits on every 100th), so allocs/op is per record. One
// outcome in ten fails and every fifth carries a link.
func BenchmarkStore_CommitPage(b *testing.B) {
	benchCommitPages(b, func(n int) engine.Outcome {
		key := fmt.Sprintf("case-%07d", n%50000)
		o := engine.Outcome{RecordKey: key, Action: engine.ActionUpdated, PayloadHash: "3f2a91c04b7e", TargetID: "g-" + key, Transaction: "t1"}
		switch {
		case n%10 == 9:
			o = failed(key, "http_503")
		case n%5 == 0:
			o.Link = &engine.Link{SystemA: "primero", IDA: key, SystemB: "oscar", IDB: "g-" + key}
		}
		return o
	})
}

// BenchmarkStore_CommitPageAllWritten is the page of a run where every
// record is written, as a dashboard table's first load (engine bench
// --scenario sql): each outcome creates a row, links it and remembers its
// source version; no failure, so the retry queue stays empty.
func BenchmarkStore_CommitPageAllWritten(b *testing.B) {
	benchCommitPages(b, func(n int) engine.Outcome {
		key := fmt.Sprintf("case-%07d", n)
		return engine.Outcome{RecordKey: key, Action: engine.ActionCreated, PayloadHash: "3f2a91c04b7e", TargetID: key,
			SourceKey: key, SourceVersion: "2025-06-01T00:00:00Z",
			Link: &engine.Link{SystemA: "primero", IDA: key, SystemB: "ona", IDB: key}}
	})
}

// benchCommitPages makes one op one outcome (the nth from outcome) and
// commits a page of 100 on every 100th op, its cursor the last key.
func benchCommitPages(b *testing.B, outcome func(n int) engine.Outcome) {
	s := openTest(b)
	ctx := b.Context()
	run := startRun(b, s, "p")
	const perPage = 100
	outs := make([]engine.Outcome, 0, perPage)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		outs = append(outs, outcome(n))
		n++
		if len(outs) == perPage {
			c := engine.PageCommit{RunID: run, Pipeline: "p", Outcomes: outs, Now: t0.Add(time.Duration(n) * time.Millisecond), Cursor: ptr(outs[perPage-1].RecordKey)}
			if err := s.CommitPage(ctx, c); err != nil {
				b.Fatal(err)
			}
			outs = outs[:0]
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "outcomes/s")
}

// BenchmarkStore_CommitPageRandomKeys is CommitPageAllWritten with the keys
// a dashboard load has: random UUIDs, so every outcome lands on its own
// leaf of each index (records, source_versions, links both ways,
// outcomes_record), as in engine bench --scenario sql. 30,000 outcomes
// (about 10,000 cases and their services) before the timed part, so the
// file is larger than the writer's page cache.
func BenchmarkStore_CommitPageRandomKeys(b *testing.B) {
	// linked: a REST target's outcome, with its link; native: a SQL
	// target's (an upsert by key writes no link).
	b.Run("linked", func(b *testing.B) { benchCommitRandomKeys(b, true) })
	b.Run("native", func(b *testing.B) { benchCommitRandomKeys(b, false) })
}

func benchCommitRandomKeys(b *testing.B, linked bool) {
	s := openTest(b)
	ctx := b.Context()
	run := startRun(b, s, "p")
	const perPage = 100
	rng := rand.New(rand.NewPCG(1, 2))
	uuid := randomUUIDs(rng)
	n := 0
	page := func() engine.PageCommit {
		outs := make([]engine.Outcome, perPage)
		for i := range outs {
			key := uuid()
			outs[i] = engine.Outcome{RecordKey: key, Action: engine.ActionCreated, PayloadHash: "3f2a91c04b7e5d60", TargetID: key,
				SourceKey: key, SourceVersion: "2025-06-01T00:00:00Z"}
			if linked {
				outs[i].Link = &engine.Link{SystemA: "primero", IDA: key, SystemB: "ona", IDB: key}
			}
		}
		n += perPage
		return engine.PageCommit{RunID: run, Pipeline: "p", Outcomes: outs, Now: t0.Add(time.Duration(n) * time.Millisecond)}
	}
	for range 300 {
		if err := s.CommitPage(ctx, page()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	done := 0
	cpu0 := processCPU()
	for b.Loop() {
		b.StopTimer()
		c := page()
		b.StartTimer()
		if err := s.CommitPage(ctx, c); err != nil {
			b.Fatal(err)
		}
		done += perPage
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "outcomes/s")
	b.ReportMetric((processCPU()-cpu0)/float64(done), "cpu-µs/outcome")
}

// BenchmarkStore_BeginCreate records one create intent per op, as f1's
// rate-limited creates do (each its own commit), and clears the intents
// of every 100 with a page commit, as the run does. cpu-µs/intent is the
// process's CPU per intent, page commits included.
func BenchmarkStore_BeginCreate(b *testing.B) {
	s := openTest(b)
	ctx := b.Context()
	run := startRun(b, s, "p")
	const perPage = 100
	outs := make([]engine.Outcome, 0, perPage)
	b.ReportAllocs()
	cpu0 := processCPU()
	n := 0
	for b.Loop() {
		key := fmt.Sprintf("case-%07d", n)
		n++
		if err := s.BeginCreates(ctx, run, t0, []engine.Intent{{Pipeline: "p", RecordKey: key, PayloadHash: "3f2a91c04b7e"}}); err != nil {
			b.Fatal(err)
		}
		outs = append(outs, engine.Outcome{RecordKey: key, Action: engine.ActionCreated, PayloadHash: "3f2a91c04b7e", TargetID: "g-" + key})
		if len(outs) == perPage {
			c := engine.PageCommit{RunID: run, Pipeline: "p", Outcomes: outs, Now: t0.Add(time.Duration(n) * time.Millisecond), Cursor: ptr(key)}
			if err := s.CommitPage(ctx, c); err != nil {
				b.Fatal(err)
			}
			outs = outs[:0]
		}
	}
	b.ReportMetric((processCPU()-cpu0)/float64(n), "cpu-µs/intent")
}

// BenchmarkStore_KnownRandomKeys reads what the state knows of a page of
// 100 source keys (half of them written before, at random UUID keys, as a
// dashboard's rerun meets them), from a state of 30,000 records without
// create intents or links (a SQL target's pipeline); one op is one page.
func BenchmarkStore_KnownRandomKeys(b *testing.B) {
	s := openTest(b)
	ctx := b.Context()
	run := startRun(b, s, "p")
	rng := rand.New(rand.NewPCG(3, 4))
	uuid := randomUUIDs(rng)
	var written []string
	for p := range 300 {
		outs := make([]engine.Outcome, 100)
		for i := range outs {
			key := uuid()
			written = append(written, key)
			outs[i] = engine.Outcome{RecordKey: key, Action: engine.ActionCreated, PayloadHash: "3f2a91c04b7e5d60", TargetID: key,
				SourceKey: key, SourceVersion: "2025-06-01T00:00:00Z"}
		}
		if err := s.CommitPage(ctx, engine.PageCommit{RunID: run, Pipeline: "p", Outcomes: outs, Now: t0.Add(time.Duration(p) * time.Second)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	pages := 0
	for b.Loop() {
		keys := make([]string, 100)
		for i := range keys {
			if i%2 == 0 {
				keys[i] = written[(pages*50+i/2)*7919%len(written)]
			} else {
				keys[i] = uuid()
			}
		}
		kn, err := s.Known(ctx, engine.KnownQuery{Pipeline: "p", SourceKeys: keys})
		if err != nil {
			b.Fatal(err)
		}
		if len(kn.Records) != 50 {
			b.Fatalf("known %d records of 50 written", len(kn.Records))
		}
		pages++
	}
	b.ReportMetric((processCPU()-cpu0)/float64(pages*100), "cpu-µs/key")
}

// randomUUIDs returns a maker of version-4-shaped UUIDs drawn from rng: the
// record keys Primero gives, random across every index they land in.
func randomUUIDs(rng *rand.Rand) func() string {
	return func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	}
}
