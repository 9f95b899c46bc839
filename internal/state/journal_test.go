package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"casesync/engine"
)

func knownIntentsOf(t *testing.T, s *Store, keys ...string) map[string]string {
	t.Helper()
	kn, err := s.Known(t.Context(), engine.KnownQuery{Pipeline: "p", SourceKeys: keys, LinkFrom: "a", LinkTo: "b"})
	if err != nil {
		t.Fatal(err)
	}
	return kn.Intents
}

func intentRows(t *testing.T, s *Store) map[string]string {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT record_key, payload_hash FROM write_intents`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, h string
		if err := rows.Scan(&k, &h); err != nil {
			t.Fatal(err)
		}
		out[k] = h
	}
	return out
}

// An intent is in the journal, not yet in write_intents, and every read of
// intents counts it; an abandoned one is gone; a page commit folds the
// rest in, clears its own outcomes' intents and empties the journal.
func TestJournal_UnfoldedIntentsCountAndFold(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	run := startRun(t, s, "p")
	for _, in := range []engine.Intent{{Pipeline: "p", RecordKey: "c1#s1", PayloadHash: "h1"}, {Pipeline: "p", RecordKey: "c2", PayloadHash: "h2"},
		{Pipeline: "p", RecordKey: "c3", PayloadHash: "h3"}, {Pipeline: "other", RecordKey: "c1", PayloadHash: "x"}} {
		if err := s.BeginCreates(ctx, run, t0, []engine.Intent{in}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AbandonCreate(ctx, "p", "c3"); err != nil {
		t.Fatal(err)
	}
	if got := intentRows(t, s); len(got) != 0 {
		t.Errorf("write_intents before a commit = %v, want none (the journal holds them)", got)
	}
	if diff := cmp.Diff(map[string]string{"c1#s1": "h1", "c2": "h2"}, knownIntentsOf(t, s, "c1", "c2", "c3")); diff != "" {
		t.Errorf("Known's intents (-want +got):\n%s", diff)
	}
	if h, ok, err := s.CreateIntent(ctx, "p", "c2"); err != nil || !ok || h != "h2" {
		t.Errorf("CreateIntent(c2) = %q, %v, %v; want h2", h, ok, err)
	}
	if _, ok, _ := s.CreateIntent(ctx, "p", "c3"); ok {
		t.Errorf("CreateIntent(c3) found the abandoned intent")
	}
	commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c2"),
		Outcomes: []engine.Outcome{{RecordKey: "c2", Action: engine.ActionCreated, PayloadHash: "h2", TargetID: "g2"}}})
	want := map[string]string{"c1#s1": "h1", "c1": "x"}
	if diff := cmp.Diff(want, intentRows(t, s)); diff != "" {
		t.Errorf("write_intents after the commit (-want +got):\n%s", diff)
	}
	b, err := os.ReadFile(s.abs + "-intents")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 1 {
		t.Errorf("journal after the commit has %d lines, want only its header:\n%s", n, b)
	}
	if diff := cmp.Diff(map[string]string{"c1#s1": "h1"}, knownIntentsOf(t, s, "c1", "c2")); diff != "" {
		t.Errorf("Known's intents after the commit (-want +got):\n%s", diff)
	}
}

// What a killed process left in the journal is folded when the state is
// opened next, from the offset its last fold recorded on: lines a commit
// already folded (and whose intents its outcomes cleared) never come back,
// and a line cut short is no intent.
func TestJournal_RecoveredAtOpen(t *testing.T) {
	const gen = "0123456789abcdef"
	head := `{"journal":"` + gen + `"}` + "\n"
	folded := `{"p":"p","k":"done","h":"h0","r":1,"at":"t"}` + "\n"
	rest := `{"p":"p","k":"c1","h":"h1","r":1,"at":"t"}` + "\n" +
		`{"p":"p","k":"c2","h":"h2","r":1,"at":"t"}` + "\n" +
		`{"p":"p","k":"c2","x":true}` + "\n" +
		`{"p":"p","k":"c4","h":"h4","r":1,"at":"t"}` + "\n" +
		`{"p":"p","k":"c5","h":"h` // cut short by the kill
	tests := []struct {
		name string
		mark string // the fold recorded in the state, if any
		want map[string]string
	}{
		{"no fold recorded", "", map[string]string{"done": "h0", "c1": "h1", "c4": "h4"}},
		{"the first line folded", gen, map[string]string{"c1": "h1", "c4": "h4"}},
		{"a fold of another journal", "fedcba9876543210", map[string]string{"done": "h0", "c1": "h1", "c4": "h4"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if tc.mark != "" {
				if _, err := s.w.ExecContext(t.Context(), `INSERT INTO intent_journal (id, gen, folded) VALUES (1, ?, ?)`, tc.mark, len(head)+len(folded)); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+"-intents", []byte(head+folded+rest), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err = Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if diff := cmp.Diff(tc.want, intentRows(t, s)); diff != "" {
				t.Errorf("write_intents after the open (-want +got):\n%s", diff)
			}
			if b, _ := os.ReadFile(path + "-intents"); strings.Count(string(b), "\n") != 1 {
				t.Errorf("journal after the open:\n%s\nwant only a header", b)
			}
		})
	}
}

// Two stores of one path in a process share its journal: an intent one
// records, the other's Known counts, and the other's commit folds.
func TestJournal_SharedByStoresOfOnePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	a := openAt(t, path)
	b := openAt(t, path)
	run := startRun(t, a, "p")
	if err := a.BeginCreates(t.Context(), run, t0, []engine.Intent{{Pipeline: "p", RecordKey: "c1", PayloadHash: "h1"}}); err != nil {
		t.Fatal(err)
	}
	if got := knownIntentsOf(t, b, "c1"); got["c1"] != "h1" {
		t.Errorf("the other store's Known = %v, want c1's intent", got)
	}
	commit(t, b, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c0"),
		Outcomes: []engine.Outcome{{RecordKey: "c0", Action: engine.ActionSkipped, Reason: "r"}}})
	if got := intentRows(t, a); got["c1"] != "h1" {
		t.Errorf("write_intents after the other store's commit = %v, want c1's intent folded", got)
	}
}

// A journal that never empties at a fold (other pages' creates keep
// arriving) is rewritten with only its unfolded lines once it is long, and
// what it holds still counts, and still comes back after a crash.
func TestJournal_CompactedWhenLinesKeepArriving(t *testing.T) {
	defer func(n int64) { journalCompactAt = n }(journalCompactAt)
	journalCompactAt = 200
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	run := startRun(t, s, "p")
	var keys []string
	for i := range 6 {
		key := "c" + string(rune('0'+i))
		keys = append(keys, key)
		if err := s.BeginCreates(ctx, run, t0, []engine.Intent{{Pipeline: "p", RecordKey: key, PayloadHash: "h" + key}}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			continue
		}
		// Fold while one more intent arrives from "another page".
		done, err := func() (func(bool), error) {
			tx, err := s.w.BeginTx(ctx, nil)
			if err != nil {
				return nil, err
			}
			d, err := s.journal.foldInto(ctx, tx)
			if err != nil {
				tx.Rollback()
				return nil, err
			}
			if err := s.BeginCreates(ctx, run, t0, []engine.Intent{{Pipeline: "p", RecordKey: "late" + key, PayloadHash: "hl"}}); err != nil {
				tx.Rollback()
				return nil, err
			}
			return d, tx.Commit()
		}()
		if err != nil {
			t.Fatal(err)
		}
		done(true)
		keys = append(keys, "late"+key)
	}
	fi, err := os.Stat(path + "-intents")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 400 {
		t.Errorf("journal is %d bytes after folds that left one line each; want it compacted", fi.Size())
	}
	want := knownIntentsOf(t, s, keys...)
	if len(want) != len(keys) {
		t.Fatalf("Known's intents = %v, want all of %v", want, keys)
	}
	// A crash now: the lines left are folded by the next open.
	b, err := os.ReadFile(path + "-intents")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-intents", b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if diff := cmp.Diff(want, intentRows(t, s)); diff != "" {
		t.Errorf("write_intents after the reopen (-want +got):\n%s", diff)
	}
}

// copyStateFiles copies the state file, its -wal and its journal as they
// are now into a new folder, as a process killed at this point would leave
// them, and returns the copy's path.
func copyStateFiles(t *testing.T, s *Store) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "state.db")
	for _, suffix := range []string{"", "-wal", "-intents"} {
		b, err := os.ReadFile(s.abs + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// A read-only store (a dry-run's) counts the intents a killed process left
// in the journal, as the next writing open will fold them: a dry-run after
// a crash shows the lookup a run would make, not a create. Lines an earlier
// commit folded (and whose intents its outcomes cleared) do not count.
func TestJournal_ReadOnlyStoreCountsUnfoldedLines(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	run := startRun(t, s, "p")
	for _, in := range []engine.Intent{{Pipeline: "p", RecordKey: "c1", PayloadHash: "h1"}, {Pipeline: "p", RecordKey: "c2", PayloadHash: "h2"}} {
		if err := s.BeginCreates(ctx, run, t0, []engine.Intent{in}); err != nil {
			t.Fatal(err)
		}
	}
	s.testAfterOutcome = func(int) {
		// Appended while the page commits: the journal keeps the
		// folded lines, past which this one is.
		if err := s.BeginCreates(ctx, run, t0, []engine.Intent{{Pipeline: "p", RecordKey: "c3", PayloadHash: "h3"}, {Pipeline: "p", RecordKey: "c4", PayloadHash: "h4"}}); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c2"),
		Outcomes: []engine.Outcome{{RecordKey: "c2", Action: engine.ActionCreated, PayloadHash: "h2", TargetID: "g2"}}})
	s.testAfterOutcome = nil
	if err := s.AbandonCreate(ctx, "p", "c4"); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(copyStateFiles(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	want := map[string]string{"c1": "h1", "c3": "h3"}
	if diff := cmp.Diff(want, knownIntentsOf(t, ro, "c1", "c2", "c3", "c4")); diff != "" {
		t.Errorf("the read-only store's Known intents (-want +got):\n%s", diff)
	}
	for _, k := range []string{"c1", "c2", "c3", "c4"} {
		h, ok, err := ro.CreateIntent(ctx, "p", k)
		if err != nil {
			t.Fatal(err)
		}
		if h != want[k] || ok != (want[k] != "") {
			t.Errorf("the read-only store's CreateIntent(%s) = %q, %v; want %q", k, h, ok, want[k])
		}
	}
}

// A process killed between a page commit and the journal's truncation
// leaves lines the commit folded: the next open skips them by the offset
// the commit recorded, so an intent the page's outcome cleared does not
// come back, while one still in flight does.
func TestJournal_KilledBetweenFoldAndTruncation(t *testing.T) {
	tests := []struct {
		name       string
		beforeTrim bool // the journal as it was when the commit began
	}{
		{"killed before the truncation", true},
		{"killed after it", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			ctx := t.Context()
			run := startRun(t, s, "p")
			if err := s.BeginCreates(ctx, run, t0, []engine.Intent{{Pipeline: "p", RecordKey: "c1", PayloadHash: "h1"}, {Pipeline: "p", RecordKey: "c2", PayloadHash: "h2"}}); err != nil {
				t.Fatal(err)
			}
			untrimmed, err := os.ReadFile(s.abs + "-intents")
			if err != nil {
				t.Fatal(err)
			}
			commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("c1"),
				Outcomes: []engine.Outcome{{RecordKey: "c1", Action: engine.ActionCreated, PayloadHash: "h1", TargetID: "g1"}}})
			path := copyStateFiles(t, s)
			if tc.beforeTrim {
				if err := os.WriteFile(path+"-intents", untrimmed, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c := openAt(t, path)
			if diff := cmp.Diff(map[string]string{"c2": "h2"}, intentRows(t, c)); diff != "" {
				t.Errorf("write_intents after the reopen (-want +got):\n%s", diff)
			}
		})
	}
}

// Intents recorded while pages commit, through two stores of one path,
// with the journal compacted at nearly every fold: each one is counted
// from the moment it is recorded until its own page commits, and not after.
func TestJournal_IntentsVisibleWhileFoldsAndCompactionsRun(t *testing.T) {
	defer func(n int64) { journalCompactAt = n }(journalCompactAt)
	journalCompactAt = 300
	path := filepath.Join(t.TempDir(), "state.db")
	a := openAt(t, path)
	b := openAt(t, path)
	ctx := t.Context()
	run := startRun(t, a, "p")
	const n = 150
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		// Pipeline q records creates and never commits: every one
		// stays counted, by both stores.
		defer wg.Done()
		for i := range n {
			k := fmt.Sprintf("q%d", i)
			if err := a.BeginCreates(ctx, run, t0, []engine.Intent{{Pipeline: "q", RecordKey: k, PayloadHash: "h"}}); err != nil {
				t.Error(err)
				return
			}
			for _, s := range []*Store{a, b} {
				kn, err := s.Known(ctx, engine.KnownQuery{Pipeline: "q", SourceKeys: []string{"q0", k}, LinkFrom: "a", LinkTo: "b"})
				if err != nil {
					t.Error(err)
					return
				}
				if kn.Intents["q0"] != "h" || kn.Intents[k] != "h" {
					t.Errorf("Known's intents of q0 and %s = %v, want both", k, kn.Intents)
				}
			}
		}
	}()
	go func() {
		// Pipeline p commits each create's page, alternately through
		// either store.
		defer wg.Done()
		for i := range n {
			k := fmt.Sprintf("p%d", i)
			if err := b.BeginCreates(ctx, run, t0, []engine.Intent{{Pipeline: "p", RecordKey: k, PayloadHash: "h"}}); err != nil {
				t.Error(err)
				return
			}
			if h, ok, err := a.CreateIntent(ctx, "p", k); err != nil || !ok || h != "h" {
				t.Errorf("CreateIntent(%s) = %q, %v, %v; want its intent", k, h, ok, err)
			}
			s := []*Store{a, b}[i%2]
			if err := s.CommitPage(ctx, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr(k),
				Outcomes: []engine.Outcome{{RecordKey: k, Action: engine.ActionCreated, PayloadHash: "h", TargetID: "g" + k}}}); err != nil {
				t.Error(err)
				return
			}
			if _, ok, err := b.CreateIntent(ctx, "p", k); err != nil || ok {
				t.Errorf("CreateIntent(%s) after its page committed = %v, %v; want none", k, ok, err)
			}
		}
	}()
	wg.Wait()
}

// A record key is whatever bytes the source gave (a SQL source's id column
// may hold text that is not UTF-8): the journal keeps it exactly, so a
// process killed after recording the create leaves the intent under the
// key the rerun looks up, not one with U+FFFD in place of a byte, and a
// compaction rewrites it exactly too.
func TestJournal_KeysThatAreNotUTF8SurviveAKill(t *testing.T) {
	keys := []string{"case-\xff", "caf\xe9#item-\xc3", "plain"}
	tests := []struct {
		name    string
		compact bool
	}{
		{"as appended", false},
		{"as compacted", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.compact {
				defer func(n int64) { journalCompactAt = n }(journalCompactAt)
				journalCompactAt = 0
			}
			s := openTest(t)
			ctx := t.Context()
			run := startRun(t, s, "p")
			want := map[string]string{}
			for i, k := range keys {
				h := fmt.Sprintf("h%d", i)
				want[k] = h
				if err := s.BeginCreates(ctx, run, t0, []engine.Intent{{Pipeline: "p", RecordKey: k, PayloadHash: h}}); err != nil {
					t.Fatal(err)
				}
			}
			if tc.compact {
				// A fold during which another create is recorded
				// leaves the journal compacted to that one line.
				s.testAfterOutcome = func(int) {
					if err := s.BeginCreates(ctx, run, t0, []engine.Intent{{Pipeline: "p", RecordKey: "late-\xfe", PayloadHash: "hl"}}); err != nil {
						t.Fatal(err)
					}
				}
				commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Cursor: ptr("x"),
					Outcomes: []engine.Outcome{{RecordKey: "x", Action: engine.ActionSkipped, Reason: "r"}}})
				s.testAfterOutcome = nil
				want["late-\xfe"] = "hl"
			}
			c, err := Open(copyStateFiles(t, s))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if diff := cmp.Diff(want, intentRows(t, c)); diff != "" {
				t.Errorf("write_intents after a kill (-want +got):\n%s", diff)
			}
		})
	}
}
