package state

import (
	"errors"
	"testing"
	"time"

	"casesync/engine"

	"github.com/google/go-cmp/cmp"
)

func TestStore_Inbox(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	puts := []struct {
		item    engine.InboxItem
		wantDup bool
	}{
		{engine.InboxItem{Inbox: "referrals", DeliveryID: "d-2", RecordKey: "case-2", Received: t0.Add(time.Second)}, false},
		{engine.InboxItem{Inbox: "referrals", DeliveryID: "d-1", RecordKey: "case-1", Body: []byte(`{"id":"case-1"}`), Received: t0}, false},
		{engine.InboxItem{Inbox: "referrals", DeliveryID: "d-1", RecordKey: "case-1", Body: []byte(`{"id":"case-1","again":true}`), Received: t0.Add(time.Minute)}, true},
		{engine.InboxItem{Inbox: "closures", DeliveryID: "d-1", RecordKey: "case-1", Received: t0}, false},
	}
	for _, p := range puts {
		dup, err := s.InboxPut(ctx, p.item)
		if err != nil || dup != p.wantDup {
			t.Fatalf("InboxPut(%s/%s) = %v, %v; want dup=%v", p.item.Inbox, p.item.DeliveryID, dup, err, p.wantDup)
		}
	}

	pending, err := s.InboxPending(ctx, "referrals", 0)
	if err != nil {
		t.Fatal(err)
	}
	ignoreID := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".ID" }, cmp.Ignore())
	want := []engine.InboxItem{
		{Inbox: "referrals", DeliveryID: "d-1", RecordKey: "case-1", Body: []byte(`{"id":"case-1"}`), Received: t0},
		{Inbox: "referrals", DeliveryID: "d-2", RecordKey: "case-2", Received: t0.Add(time.Second)},
	}
	if diff := cmp.Diff(want, pending, ignoreID); diff != "" {
		t.Fatalf("InboxPending (-want +got):\n%s", diff)
	}
	if got, _ := s.InboxPending(ctx, "referrals", 1); len(got) != 1 || got[0].DeliveryID != "d-1" {
		t.Errorf("InboxPending(limit 1) = %+v, want d-1 only", got)
	}

	first := pending[0].ID
	if err := s.InboxAttempted(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.InboxDone(ctx, first, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var body []byte
	var processed string
	if err := s.r.QueryRowContext(ctx, `SELECT body, processed_at FROM inbox WHERE id = ?`, first).Scan(&body, &processed); err != nil {
		t.Fatal(err)
	}
	if body != nil || processed != formatTime(t0.Add(time.Hour)) {
		t.Errorf("after InboxDone: body %q, processed_at %q; want no body and the done time", body, processed)
	}
	pending, err = s.InboxPending(ctx, "referrals", 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[1:], pending, ignoreID); diff != "" {
		t.Errorf("InboxPending after done (-want +got):\n%s", diff)
	}
	// A redelivery of a processed delivery is still a duplicate.
	if dup, err := s.InboxPut(ctx, puts[1].item); err != nil || !dup {
		t.Errorf("InboxPut after done = %v, %v; want dup", dup, err)
	}
	for name, err := range map[string]error{
		"InboxDone":      s.InboxDone(ctx, 999, t0),
		"InboxAttempted": s.InboxAttempted(ctx, 999),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s(999) = %v, want ErrNotFound", name, err)
		}
	}
}

func TestStore_Stats(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	run := startRun(t, s, "cases")
	if err := s.FinishRun(ctx, run, "succeeded", engine.Counts{Read: 2, Created: 1, Failed: 2}, "", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	commit(t, s, engine.PageCommit{RunID: run, Pipeline: "cases", Now: t0, Cursor: ptr("c9"), Retry: engine.RetryPolicy{MaxAttempts: 1},
		Outcomes: []engine.Outcome{failed("k1", "http_422"), created("k2", "h", "T")}})
	commit(t, s, engine.PageCommit{RunID: run, Pipeline: "referrals", Now: t0, Outcomes: []engine.Outcome{failed("k3", "http_503")}})
	if err := s.SetCursor(ctx, "services", "2026-01-01", "cli:amara", t0); err != nil {
		t.Fatal(err)
	}

	// A later run that failed: the last run changes, the last success not.
	run2 := startRun(t, s, "cases")
	if err := s.FinishRun(ctx, run2, "failed", engine.Counts{}, "auth refused", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}

	got, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := engine.RunInfo{ID: run, Pipeline: "cases", SpecHash: "spec-hash-1", Trigger: "test", Started: t0,
		Finished: t0.Add(time.Minute), Status: "succeeded", Counts: engine.Counts{Read: 2, Created: 1, Failed: 2}}
	want := map[string]PipelineStats{
		"cases": {Cursor: "c9", HasCursor: true, CursorUpdated: t0, HasRun: true, Queued: 1, Parked: 1,
			LastRun: engine.RunInfo{ID: run2, Pipeline: "cases", SpecHash: "spec-hash-1", Trigger: "test", Started: t0,
				Finished: t0.Add(2 * time.Minute), Status: "failed", Error: "auth refused"},
			LastSuccess: first, HasSuccess: true, QueuedByReason: map[string]int{"http_422": 1}},
		"referrals": {Queued: 1, QueuedByReason: map[string]int{"http_503": 1}},
		"services":  {Cursor: "2026-01-01", HasCursor: true, CursorUpdated: t0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

// A processed delivery id is a duplicate within its window and a new
// delivery after it; the delivery envelope is erased with the body.
func TestInbox_DedupeWindowAndDeliveryErased(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	item := func(at time.Duration, window time.Duration) engine.InboxItem {
		return engine.InboxItem{Inbox: "sync", DeliveryID: "same-body", RecordKey: "case-1", Body: []byte(`{"id":"case-1"}`),
			Delivery: []byte(`{"event":"case.post"}`), Received: t0.Add(at), Window: window}
	}
	if dup, err := s.InboxPut(ctx, item(0, time.Minute)); dup || err != nil {
		t.Fatalf("first: dup=%v err=%v", dup, err)
	}
	// Pending: a repeat is a duplicate whatever the window.
	if dup, _ := s.InboxPut(ctx, item(2*time.Minute, time.Minute)); !dup {
		t.Fatal("a repeat of a pending delivery was taken as new")
	}
	pending, _ := s.InboxPending(ctx, "sync", 0)
	if len(pending) != 1 || string(pending[0].Delivery) != `{"event":"case.post"}` {
		t.Fatalf("pending %+v", pending)
	}
	if err := s.InboxDone(ctx, pending[0].ID, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	var delivery []byte
	if err := s.r.QueryRowContext(ctx, `SELECT delivery FROM inbox WHERE id = ?`, pending[0].ID).Scan(&delivery); err != nil || delivery != nil {
		t.Fatalf("delivery not erased: %q %v", delivery, err)
	}
	tests := []struct {
		name    string
		at      time.Duration
		window  time.Duration
		wantDup bool
	}{
		{"within the window", 30 * time.Second, time.Minute, true},
		{"for ever", 48 * time.Hour, -1, true},
		{"after the window", 2 * time.Minute, time.Minute, false},
	}
	for _, tc := range tests {
		if dup, err := s.InboxPut(ctx, item(tc.at, tc.window)); err != nil || dup != tc.wantDup {
			t.Fatalf("%s: dup=%v err=%v, want dup=%v", tc.name, dup, err, tc.wantDup)
		}
	}
	if pending, _ := s.InboxPending(ctx, "sync", 0); len(pending) != 1 || pending[0].Received != t0.Add(2*time.Minute) {
		t.Fatalf("the delivery after the window is not pending again: %+v", pending)
	}
}
