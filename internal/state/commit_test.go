package state

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"casesync/engine"

	"github.com/google/go-cmp/cmp"
)

// page builds a commit at t0 with the default retry policy.
func page(pipeline string, runID int64, outs ...engine.Outcome) engine.PageCommit {
	return engine.PageCommit{RunID: runID, Pipeline: pipeline, Outcomes: outs, Now: t0}
}

func auditAt(at time.Time) engine.AuditEntry {
	return engine.AuditEntry{At: at, Actor: "engine", Action: "test"}
}

func ptr[T any](v T) *T { return &v }

// startRun starts a run of pipeline at t0 and fails the test on error.
func startRun(tb testing.TB, s *Store, pipeline string) int64 {
	tb.Helper()
	id, err := s.StartRun(tb.Context(), pipeline, "spec-hash-1", "test", t0)
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

func commit(tb testing.TB, s *Store, c engine.PageCommit) {
	tb.Helper()
	if err := s.CommitPage(tb.Context(), c); err != nil {
		tb.Fatal(err)
	}
}

func created(key, hash, target string) engine.Outcome {
	return engine.Outcome{RecordKey: key, Action: engine.ActionCreated, PayloadHash: hash, TargetID: target, Transaction: "tx-" + key}
}

func failed(key, reason string) engine.Outcome {
	return engine.Outcome{RecordKey: key, Action: engine.ActionFailed, Reason: reason, Error: "POST /api/cases: status 503", Class: engine.ClassRetryable}
}

func TestStore_CommitPage(t *testing.T) {
	t1 := t0.Add(time.Hour)
	type want struct {
		records map[string]engine.RecordState
		queue   []engine.RetryItem
		cursor  *string
	}
	queued := func(key string, attempts int, updated time.Time, wait time.Duration, cursorValue string) engine.RetryItem {
		return engine.RetryItem{
			Pipeline: "p", RecordKey: key, Attempts: attempts, NextAt: updated.Add(wait), LastError: "POST /api/cases: status 503",
			Reason: "http_503", Class: engine.ClassRetryable, CursorValue: cursorValue, UpdatedAt: updated,
		}
	}
	tests := []struct {
		name  string
		pages []engine.PageCommit // RunID is filled in
		want  want
	}{
		{
			name: "created records the write and advances the cursor",
			pages: []engine.PageCommit{{Pipeline: "p", Now: t0, Cursor: ptr("c1"), Outcomes: []engine.Outcome{
				created("k1", "h1", "T1"),
			}}},
			want: want{
				records: map[string]engine.RecordState{"k1": {PayloadHash: "h1", TargetID: "T1", Action: engine.ActionCreated, UpdatedAt: t0}},
				cursor:  ptr("c1"),
			},
		},
		{
			name: "outcome time wins over page time",
			pages: []engine.PageCommit{{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{
				{RecordKey: "k1", Action: engine.ActionUpdated, PayloadHash: "h2", TargetID: "T1", At: t1},
			}}},
			want: want{records: map[string]engine.RecordState{"k1": {PayloadHash: "h2", TargetID: "T1", Action: engine.ActionUpdated, UpdatedAt: t1}}},
		},
		{
			name: "unchanged keeps the stored hash and target when it omits them",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{created("k1", "h1", "T1")}},
				{Pipeline: "p", Now: t1, Outcomes: []engine.Outcome{{RecordKey: "k1", Action: engine.ActionUnchanged}}},
			},
			want: want{records: map[string]engine.RecordState{"k1": {PayloadHash: "h1", TargetID: "T1", Action: engine.ActionUnchanged, UpdatedAt: t1}}},
		},
		{
			name: "failed enqueues and leaves the last write alone",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{created("k1", "h1", "T1")}},
				{Pipeline: "p", Now: t1, Outcomes: []engine.Outcome{
					{RecordKey: "k1", Action: engine.ActionFailed, Reason: "http_503", Error: "POST /api/cases: status 503", Class: engine.ClassRetryable, CursorValue: "2026-02-01"},
				}},
			},
			want: want{
				records: map[string]engine.RecordState{"k1": {PayloadHash: "h1", TargetID: "T1", Action: engine.ActionCreated, UpdatedAt: t0}},
				queue:   []engine.RetryItem{queued("k1", 1, t1, time.Minute, "2026-02-01")},
			},
		},
		{
			name: "a later failure keeps the queued cursor value",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{
					{RecordKey: "k1", Action: engine.ActionFailed, Reason: "http_503", Error: "POST /api/cases: status 503", Class: engine.ClassRetryable, CursorValue: "2026-02-01"},
				}},
				{Pipeline: "p", Now: t1, Outcomes: []engine.Outcome{
					{RecordKey: "k1", Action: engine.ActionFailed, Reason: "http_503", Error: "POST /api/cases: status 503", Class: engine.ClassRetryable},
				}},
			},
			want: want{queue: []engine.RetryItem{queued("k1", 2, t1, 2*time.Minute, "2026-02-01")}},
		},
		{
			name: "success clears the queue entry",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{failed("k1", "http_503")}},
				{Pipeline: "p", Now: t1, Outcomes: []engine.Outcome{created("k1", "h1", "T1")}},
			},
			want: want{records: map[string]engine.RecordState{"k1": {PayloadHash: "h1", TargetID: "T1", Action: engine.ActionCreated, UpdatedAt: t1}}},
		},
		{
			// The page asks once whether the pipeline has retry entries;
			// its own failure makes the answer yes for the rest of it.
			name: "success after a failure in the same page clears the entry",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{created("k9", "h9", "T9"), failed("k1", "http_503"), created("k1", "h1", "T1")}},
			},
			want: want{records: map[string]engine.RecordState{
				"k1": {PayloadHash: "h1", TargetID: "T1", Action: engine.ActionCreated, UpdatedAt: t0},
				"k9": {PayloadHash: "h9", TargetID: "T9", Action: engine.ActionCreated, UpdatedAt: t0},
			}},
		},
		{
			name: "failure after a success in the same page is queued",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{created("k9", "h9", "T9"), failed("k1", "http_503")}},
			},
			want: want{
				records: map[string]engine.RecordState{"k9": {PayloadHash: "h9", TargetID: "T9", Action: engine.ActionCreated, UpdatedAt: t0}},
				queue:   []engine.RetryItem{{Pipeline: "p", RecordKey: "k1", Attempts: 1, NextAt: t0.Add(time.Minute), LastError: "POST /api/cases: status 503", Reason: "http_503", Class: engine.ClassRetryable, UpdatedAt: t0}},
			},
		},
		{
			name: "skipped clears the queue entry and records no write",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{failed("k1", "http_503")}},
				{Pipeline: "p", Now: t1, Outcomes: []engine.Outcome{{RecordKey: "k1", Action: engine.ActionSkipped, Reason: "no_consent"}}},
			},
			want: want{},
		},
		{
			// The record's enrich failed (queued under k1); retried, it fans
			// out and its item is skipped: the record's entry is settled.
			name: "an item's outcome settles its record's own failure",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{failed("k1", "http_503")}},
				{Pipeline: "p", Now: t1, Outcomes: []engine.Outcome{
					{RecordKey: "k1#a", SourceKey: "k1", Action: engine.ActionSkipped, Reason: "no_change_needed"},
				}},
			},
			want: want{},
		},
		{
			name: "a failed item replaces its record's own failure",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{failed("k1", "http_503")}},
				{Pipeline: "p", Now: t1, Outcomes: []engine.Outcome{
					{RecordKey: "k1#a", SourceKey: "k1", Action: engine.ActionFailed, Reason: "http_503", Error: "POST /api/cases: status 503", Class: engine.ClassRetryable},
				}},
			},
			want: want{queue: []engine.RetryItem{queued("k1#a", 1, t1, time.Minute, "")}},
		},
		{
			// A record that failed again, beside the removal of an item it
			// wrote before, stays queued under its own key.
			name: "a record failing in the same page keeps its own entry",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Outcomes: []engine.Outcome{failed("k1", "http_503")}},
				{Pipeline: "p", Now: t1, Outcomes: []engine.Outcome{
					{RecordKey: "k1", SourceKey: "k1", Action: engine.ActionFailed, Reason: "http_503", Error: "POST /api/cases: status 503", Class: engine.ClassRetryable},
					{RecordKey: "k1#a", SourceKey: "k1", Action: engine.ActionSkipped, Reason: "left"},
				}},
			},
			want: want{queue: []engine.RetryItem{queued("k1", 2, t1, 2*time.Minute, "")}},
		},
		{
			name: "a nil cursor leaves the cursor where it was",
			pages: []engine.PageCommit{
				{Pipeline: "p", Now: t0, Cursor: ptr("c1")},
				{Pipeline: "p", Now: t1, Outcomes: []engine.Outcome{{RecordKey: "k9", Action: engine.ActionSkipped}}},
			},
			want: want{cursor: ptr("c1")},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			ctx := t.Context()
			run := startRun(t, s, "p")
			for _, pg := range tc.pages {
				pg.RunID = run
				commit(t, s, pg)
			}
			got := want{records: map[string]engine.RecordState{}}
			for _, key := range []string{"k1", "k9"} {
				if r, ok, err := s.Record(ctx, "p", key); err != nil {
					t.Fatal(err)
				} else if ok {
					got.records[key] = r
				}
			}
			if len(got.records) == 0 {
				got.records = nil
			}
			var err error
			if got.queue, err = s.Failures(ctx, "p"); err != nil {
				t.Fatal(err)
			}
			if v, ok, err := s.Cursor(ctx, "p"); err != nil {
				t.Fatal(err)
			} else if ok {
				got.cursor = &v
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("state (-want +got):\n%s", diff)
			}
			var n int
			for _, pg := range tc.pages {
				n += len(pg.Outcomes)
			}
			outs, err := s.Outcomes(ctx, run)
			if err != nil {
				t.Fatal(err)
			}
			if len(outs) != n {
				t.Errorf("Outcomes = %d rows, want %d", len(outs), n)
			}
		})
	}
}

func TestStore_CommitPageIsAtomic(t *testing.T) {
	link := func(idB string) *engine.Link {
		return &engine.Link{SystemA: "primero", IDA: "case-1", SystemB: "oscar", IDB: idB}
	}
	// Each bad page does real work (a record, a link, a queue entry, a
	// cleared entry, a cursor) before the outcome that fails it.
	good := []engine.Outcome{
		{RecordKey: "k1", Action: engine.ActionCreated, PayloadHash: "h1", TargetID: "T1", Link: link("g-1")},
		failed("k2", "http_503"),
		created("kq", "hq", "TQ"), // clears the baseline's queue entry
	}
	tests := []struct {
		name    string
		bad     func(run int64) engine.PageCommit
		cancel  bool // cancel the context after the second outcome
		wantErr string
	}{
		{
			name: "unknown action",
			bad: func(run int64) engine.PageCommit {
				return engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c2"),
					Outcomes: append(good, engine.Outcome{RecordKey: "k4", Action: "bogus"})}
			},
			wantErr: "outcome 3 (record k4): insert outcome: constraint failed: CHECK constraint failed",
		},
		{
			name: "empty record key",
			bad: func(run int64) engine.PageCommit {
				return engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c2"),
					Outcomes: append(good, engine.Outcome{Action: engine.ActionCreated})}
			},
			wantErr: "CHECK constraint failed",
		},
		{
			name: "link without a target id",
			bad: func(run int64) engine.PageCommit {
				return engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c2"),
					Outcomes: append(good, engine.Outcome{RecordKey: "k5", Action: engine.ActionCreated, Link: &engine.Link{SystemA: "primero", IDA: "case-5", SystemB: "oscar"}})}
			},
			wantErr: "outcome 3 (record k5): write link: constraint failed: CHECK constraint failed",
		},
		{
			name: "unknown run",
			bad: func(run int64) engine.PageCommit {
				return engine.PageCommit{RunID: run + 100, Pipeline: "p", Now: t0, Cursor: ptr("c2"), Outcomes: good}
			},
			wantErr: "FOREIGN KEY constraint failed",
		},
		{
			name: "context cancelled mid-page",
			bad: func(run int64) engine.PageCommit {
				return engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c2"), Outcomes: good}
			},
			cancel:  true,
			wantErr: "context canceled",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			run := startRun(t, s, "p")
			// The baseline: a record, a queue entry, a link and a cursor.
			commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c1"), Outcomes: []engine.Outcome{
				{RecordKey: "k0", Action: engine.ActionCreated, PayloadHash: "h0", TargetID: "T0", Link: link("g-0")},
				failed("kq", "http_503"),
			}})
			before := dump(t, s)

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				s.testAfterOutcome = func(i int) {
					if i == 1 {
						cancel()
					}
				}
			}
			err := s.CommitPage(ctx, tc.bad(run))
			s.testAfterOutcome = nil
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "commit page of p: ") {
				t.Fatalf("CommitPage = %v, want an error containing %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(before, dump(t, s)); diff != "" {
				t.Errorf("a failed commit changed the file (-before +after):\n%s", diff)
			}
			// The writer is free again: the same page without the fault commits.
			commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c2"), Outcomes: good})
			if v, _, _ := s.Cursor(t.Context(), "p"); v != "c2" {
				t.Errorf("cursor after the retried commit = %q, want c2", v)
			}
		})
	}
}

func TestStore_CommitPageRejectsIncompletePage(t *testing.T) {
	s := openTest(t)
	tests := []struct {
		name    string
		c       engine.PageCommit
		wantErr string
	}{
		{"no pipeline", engine.PageCommit{Now: t0}, "commit page of : pipeline is empty"},
		{"no time", engine.PageCommit{Pipeline: "p"}, "commit page of p: now is zero"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CommitPage(t.Context(), tc.c)
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("CommitPage = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestStore_Backoff(t *testing.T) {
	tests := []struct {
		name     string
		pol      engine.RetryPolicy
		attempts int
		want     time.Duration
	}{
		{"defaults first", engine.RetryPolicy{}, 1, time.Minute},
		{"defaults second", engine.RetryPolicy{}, 2, 2 * time.Minute},
		{"defaults fifth", engine.RetryPolicy{}, 5, 16 * time.Minute},
		{"defaults capped at 6h", engine.RetryPolicy{}, 10, 6 * time.Hour},
		{"custom", engine.RetryPolicy{Base: 10 * time.Second, Max: 30 * time.Second}, 2, 20 * time.Second},
		{"custom capped", engine.RetryPolicy{Base: 10 * time.Second, Max: 30 * time.Second}, 3, 30 * time.Second},
		{"max below base", engine.RetryPolicy{Base: time.Hour, Max: time.Minute}, 1, time.Minute},
		{"huge attempts", engine.RetryPolicy{}, 1000, 6 * time.Hour},
		{"huge max does not overflow", engine.RetryPolicy{Base: time.Second, Max: time.Duration(1<<63 - 1)}, 100, time.Duration(1<<63 - 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Backoff(tc.pol, tc.attempts); got != tc.want {
				t.Errorf("Backoff(%+v, %d) = %v, want %v", tc.pol, tc.attempts, got, tc.want)
			}
		})
	}
}

func TestStore_RetryBackoffAndParking(t *testing.T) {
	type try struct {
		Attempts int
		Wait     time.Duration
		Parked   bool
	}
	tests := []struct {
		name string
		pol  engine.RetryPolicy
		want []try
	}{
		{"defaults", engine.RetryPolicy{}, []try{
			{1, time.Minute, false}, {2, 2 * time.Minute, false}, {3, 4 * time.Minute, false},
			{4, 8 * time.Minute, false}, {5, 16 * time.Minute, true}, {6, 32 * time.Minute, true},
		}},
		{"custom", engine.RetryPolicy{MaxAttempts: 3, Base: 10 * time.Second, Max: 30 * time.Second}, []try{
			{1, 10 * time.Second, false}, {2, 20 * time.Second, false}, {3, 30 * time.Second, true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			ctx := t.Context()
			run := startRun(t, s, "p")
			now := t0
			var got []try
			for range tc.want {
				commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: now, Retry: tc.pol,
					Outcomes: []engine.Outcome{failed("k1", "http_503")}})
				items, err := s.Failures(ctx, "p")
				if err != nil || len(items) != 1 {
					t.Fatalf("Failures = %v, %v; want one item", items, err)
				}
				it := items[0]
				got = append(got, try{it.Attempts, it.NextAt.Sub(now), it.Parked})

				// Due exactly at next_at, not a nanosecond before, and never when parked.
				for _, probe := range []struct {
					at   time.Time
					want int
				}{{it.NextAt.Add(-time.Nanosecond), 0}, {it.NextAt, 1}} {
					if it.Parked {
						probe.want = 0
					}
					due, err := s.DueRetries(ctx, "p", probe.at, 10)
					if err != nil {
						t.Fatal(err)
					}
					if len(due) != probe.want {
						t.Errorf("attempt %d: DueRetries(%v) = %d items, want %d", it.Attempts, probe.at, len(due), probe.want)
					}
				}
				now = it.NextAt
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("tries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStore_DueRetriesOrderAndLimit(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	run := startRun(t, s, "p")
	for i, key := range []string{"k3", "k1", "k2"} {
		commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0.Add(time.Duration(i) * time.Second),
			Outcomes: []engine.Outcome{failed(key, "http_503")}})
	}
	commit(t, s, engine.PageCommit{RunID: run, Pipeline: "other", Now: t0, Outcomes: []engine.Outcome{failed("k0", "http_503")}})
	tests := []struct {
		name  string
		limit int
		want  []string
	}{
		{"all", 0, []string{"k3", "k1", "k2"}},
		{"limited", 2, []string{"k3", "k1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			due, err := s.DueRetries(ctx, "p", t0.Add(time.Hour), tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, it := range due {
				got = append(got, it.RecordKey)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("due keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStore_RequeueNow(t *testing.T) {
	at := t0.Add(time.Minute / 2)
	tests := []struct {
		name      string
		pipeline  string
		key       string
		wantN     int
		wantDue   []string
		wantAudit []string
		wantErr   string
	}{
		{"one parked record", "p", "parked", 1, []string{"parked"}, []string{"p/parked attempts=2 parked=1"}, ""},
		{"every record of the pipeline", "p", "", 2, []string{"parked", "waiting"},
			[]string{"p/parked attempts=2 parked=1", "p/waiting attempts=1 parked=0"}, ""},
		{"unknown key", "p", "nope", 0, nil, nil, ""},
		{"no pipeline", "", "", 0, nil, nil, "requeue: pipeline is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			ctx := t.Context()
			run := startRun(t, s, "p")
			park := engine.RetryPolicy{MaxAttempts: 2}
			for range 2 {
				commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Retry: park, Outcomes: []engine.Outcome{failed("parked", "http_422")}})
			}
			commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Retry: park, Outcomes: []engine.Outcome{failed("waiting", "http_503")}})
			commit(t, s, engine.PageCommit{RunID: run, Pipeline: "q", Now: t0, Outcomes: []engine.Outcome{failed("other", "http_503")}})

			n, err := s.RequeueNow(ctx, tc.pipeline, tc.key, "cli:amara", at)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("RequeueNow = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || n != tc.wantN {
				t.Fatalf("RequeueNow = %d, %v; want %d", n, err, tc.wantN)
			}
			due, err := s.DueRetries(ctx, "p", at, 0)
			if err != nil {
				t.Fatal(err)
			}
			var gotDue []string
			for _, it := range due {
				gotDue = append(gotDue, it.RecordKey)
				if it.Parked || !it.NextAt.Equal(at) {
					t.Errorf("%s: parked=%v next_at=%v, want unparked and due at %v", it.RecordKey, it.Parked, it.NextAt, at)
				}
			}
			if diff := cmp.Diff(tc.wantDue, gotDue); diff != "" {
				t.Errorf("due (-want +got):\n%s", diff)
			}
			log, err := s.AuditLog(ctx, "p", 0)
			if err != nil {
				t.Fatal(err)
			}
			var gotAudit []string
			for _, e := range log {
				if e.Action == "retry_requested" && e.Actor == "cli:amara" && e.At.Equal(at) {
					gotAudit = append([]string{e.Pipeline + "/" + e.RecordKey + " " + e.Detail}, gotAudit...)
				}
			}
			if diff := cmp.Diff(tc.wantAudit, gotAudit); diff != "" {
				t.Errorf("audit (-want +got):\n%s", diff)
			}
			if other, _ := s.DueRetries(ctx, "q", at, 0); len(other) != 0 {
				t.Errorf("requeue of p touched pipeline q: %v", other)
			}
		})
	}
}

func TestStore_Links(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	run := startRun(t, s, "cases_to_oscar")
	withLink := func(key string, l engine.Link) engine.Outcome {
		o := created(key, "h", l.IDB)
		o.Link = &l
		return o
	}
	commit(t, s, page("cases_to_oscar", run,
		withLink("case-1", engine.Link{SystemA: "primero", IDA: "case-1", SystemB: "oscar", IDB: "g-1"}),
		// Written the other way round: proGres id first.
		withLink("case-2", engine.Link{SystemA: "progres", IDA: "ind-2", SystemB: "primero", IDB: "case-2"}),
	))
	tests := []struct {
		name            string
		sysA, idA, sysB string
		want            string
		wantOK          bool
	}{
		{"forward", "primero", "case-1", "oscar", "g-1", true},
		{"reverse", "oscar", "g-1", "primero", "case-1", true},
		{"written reversed, read forward", "primero", "case-2", "progres", "ind-2", true},
		{"written reversed, read reversed", "progres", "ind-2", "primero", "case-2", true},
		{"other system", "primero", "case-1", "progres", "", false},
		{"unknown id", "primero", "case-9", "oscar", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := s.FindLink(ctx, tc.sysA, tc.idA, tc.sysB)
			if err != nil || got != tc.want || ok != tc.wantOK {
				t.Errorf("FindLink(%s, %s, %s) = %q, %v, %v; want %q, %v", tc.sysA, tc.idA, tc.sysB, got, ok, err, tc.want, tc.wantOK)
			}
		})
	}

	t.Run("same link again is a no-op, a different id replaces and audits", func(t *testing.T) {
		commit(t, s, page("cases_to_oscar", run, withLink("case-1", engine.Link{SystemA: "primero", IDA: "case-1", SystemB: "oscar", IDB: "g-1"})))
		commit(t, s, page("cases_to_oscar", run, withLink("case-1", engine.Link{SystemA: "primero", IDA: "case-1", SystemB: "oscar", IDB: "g-7"})))
		if got, _, _ := s.FindLink(ctx, "primero", "case-1", "oscar"); got != "g-7" {
			t.Errorf("FindLink after replace = %q, want g-7", got)
		}
		log, err := s.AuditLog(ctx, "cases_to_oscar", 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []engine.AuditEntry
		for _, e := range log {
			if e.Action == "link_replaced" {
				got = append(got, e)
			}
		}
		want := []engine.AuditEntry{{At: t0, Actor: "engine", Action: "link_replaced", Pipeline: "cases_to_oscar",
			RecordKey: "case-1", Detail: "primero:case-1 -> oscar: g-1 replaced by g-7"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("link audit (-want +got):\n%s", diff)
		}
	})
}

func TestStore_Runs(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	crashed := startRun(t, s, "p")
	other, err := s.StartRun(ctx, "q", "spec-hash-2", "cron", t0)
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.StartRun(ctx, "p", "spec-hash-1", "watch", t1)
	if err != nil {
		t.Fatal(err)
	}
	counts := engine.Counts{Read: 3, Created: 1, Unchanged: 1, Failed: 1}
	if err := s.FinishRun(ctx, live, "failed", counts, "1 record failed", t2); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishRun(ctx, 999, "succeeded", engine.Counts{}, "", t2); !errors.Is(err, ErrNotFound) {
		t.Errorf("FinishRun(999) = %v, want ErrNotFound", err)
	}

	runs, err := s.Runs(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.RunInfo{
		{ID: live, Pipeline: "p", SpecHash: "spec-hash-1", Trigger: "watch", Started: t1, Finished: t2, Status: "failed", Counts: counts, Error: "1 record failed"},
		{ID: other, Pipeline: "q", SpecHash: "spec-hash-2", Trigger: "cron", Started: t0, Status: "running"},
		{ID: crashed, Pipeline: "p", SpecHash: "spec-hash-1", Trigger: "test", Started: t0, Status: "interrupted"},
	}
	if diff := cmp.Diff(want, runs); diff != "" {
		t.Errorf("Runs (-want +got):\n%s", diff)
	}
	if got, _ := s.Runs(ctx, "p", 1); len(got) != 1 || got[0].ID != live {
		t.Errorf("Runs(p, 1) = %+v, want the live run only", got)
	}
	if got, ok, err := s.LastRun(ctx, "p"); err != nil || !ok || got.ID != live {
		t.Errorf("LastRun(p) = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := s.LastRun(ctx, "nope"); err != nil || ok {
		t.Errorf("LastRun(nope) = %v, %v; want not found", ok, err)
	}
	log, err := s.AuditLog(ctx, "p", 0)
	if err != nil {
		t.Fatal(err)
	}
	wantLog := []engine.AuditEntry{{At: t1, Actor: "engine", Action: "run_interrupted", Pipeline: "p", Detail: "run=" + strconv.FormatInt(crashed, 10)}}
	if diff := cmp.Diff(wantLog, log); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
}

func TestStore_OutcomesRoundTrip(t *testing.T) {
	s := openTest(t)
	run := startRun(t, s, "p")
	in := []engine.Outcome{
		{RecordKey: "k1", Action: engine.ActionCreated, TargetID: "T1", Transaction: "tx1", PayloadHash: "h1", At: t0.Add(time.Second)},
		{RecordKey: "k2", Action: engine.ActionFailed, Reason: "http_422", Error: "POST /cases: status 422", Class: engine.ClassPermanent, CursorValue: "c", Link: &engine.Link{SystemA: "a", IDA: "1", SystemB: "b", IDB: "2"}},
		{RecordKey: "k3", Action: engine.ActionSkipped, Reason: "no_consent"},
		{RecordKey: "k4", Action: engine.ActionFailed, Error: "x" + strings.Repeat("é", maxText)},
	}
	commit(t, s, page("p", run, in...))
	got, err := s.Outcomes(t.Context(), run)
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.Outcome{
		in[0],
		{RecordKey: "k2", Action: engine.ActionFailed, Reason: "http_422", Error: "POST /cases: status 422", Class: engine.ClassPermanent, At: t0},
		{RecordKey: "k3", Action: engine.ActionSkipped, Reason: "no_consent", At: t0},
		// Capped at maxText bytes without splitting the last rune.
		{RecordKey: "k4", Action: engine.ActionFailed, Error: "x" + strings.Repeat("é", maxText/2-1), At: t0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Outcomes (-want +got):\n%s", diff)
	}
}
