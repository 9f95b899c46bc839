package state

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"casesync/engine"
)

// filledState makes a state file of several pages and returns its path,
// closed.
func filledState(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	run, err := s.StartRun(t.Context(), "p", "h", "test", t0)
	if err != nil {
		t.Fatal(err)
	}
	c := engine.PageCommit{RunID: run, Pipeline: "p", Now: t0}
	for i := range 400 {
		c.Outcomes = append(c.Outcomes, engine.Outcome{RecordKey: fmt.Sprintf("case-%04d", i), Action: engine.ActionCreated,
			TargetID: fmt.Sprintf("target-%04d", i), PayloadHash: strings.Repeat("ab", 32)})
	}
	commit(t, s, c)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOpen_RefusesDamagedAndForeignFiles: a page-damaged file, a file that
// is not a database, and another application's database are refused on
// open (writing and read-only) with a hint, and left as they were.
func TestOpen_RefusesDamagedAndForeignFiles(t *testing.T) {
	tests := []struct {
		name    string
		make    func(t *testing.T) string
		wantIs  error
		wantMsg string
	}{
		{"damaged page", func(t *testing.T) string {
			path := filledState(t)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) < 8*4096 {
				t.Fatalf("state is %d bytes, want several pages to damage one", len(b))
			}
			// Page 6 (of the outcomes table or its index) overwritten with noise.
			copy(b[5*4096:6*4096], bytes.Repeat([]byte{0x5a, 0x01, 0xff, 0x00}, 1024))
			os.WriteFile(path, b, 0o600)
			return path
		}, ErrCorrupt, "Move it aside and restore the last backup"},
		{"not a database", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "notes.db")
			os.WriteFile(path, bytes.Repeat([]byte("not sqlite at all\n"), 500), 0o600)
			return path
		}, ErrCorrupt, "state file is damaged"},
		{"another application's tables", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "other.db")
			db := rawDB(t, path)
			if _, err := db.Exec(`CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT); PRAGMA user_version = 7`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return path
		}, ErrNotState, "SQLite database with other tables"},
		{"another application's id", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "other.db")
			db := rawDB(t, path)
			if _, err := db.Exec(`PRAGMA application_id = 1234; CREATE TABLE runs (id INTEGER)`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			return path
		}, ErrNotState, "another application (application_id 0x4d2)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.make(t)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, open := range []func(string, ...Option) (*Store, error){Open, OpenReadOnly} {
				s, err := open(path)
				if err == nil {
					s.Close()
					t.Fatal("open succeeded")
				}
				if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("open = %v, want errors.Is %v saying %q", err, tc.wantIs, tc.wantMsg)
				}
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Error("the refused file was changed")
			}
		})
	}
}

// TestOpen_StampsOwnFiles: a new file carries casesync's application_id,
// and a file from before the id (casesync's tables, no id) is accepted and
// stamped.
func TestOpen_StampsOwnFiles(t *testing.T) {
	path := filledState(t)
	db := rawDB(t, path)
	if got := pragma(t, db, "application_id"); got != fmt.Sprint(applicationID) {
		t.Fatalf("application_id = %s, want %d", got, applicationID)
	}
	if _, err := db.Exec("PRAGMA application_id = 0"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("open of an older casesync file: %v", err)
	}
	s.Close()
	if got := pragma(t, rawDB(t, path), "application_id"); got != fmt.Sprint(applicationID) {
		t.Errorf("application_id after open = %s, want %d", got, applicationID)
	}
}

// TestOpen_FilesArePrivate: the state file, its -wal, -shm and -intents are
// created readable by the owner only, and an existing world-readable file
// is made private, since they hold case ids and waiting inbox bodies.
func TestOpen_FilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartRun(t.Context(), "p", "h", "test", t0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-intents", path + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", filepath.Base(p), m)
		}
	}
	s.Close()

	old := filepath.Join(dir, "old.db")
	for _, p := range []string{old, old + "-intents"} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o644) // past the umask
	}
	s, err = Open(old)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, p := range []string{old, old + "-intents"} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
			t.Errorf("world-readable %s left at %#o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
}

// TestInboxDone_BodyLeavesTheWALSoon: while the store stays open (as the
// daemon's does for days), a processed delivery's body is gone from the
// main file and the -wal within a bounded time, not at the next close.
func TestInboxDone_BodyLeavesTheWALSoon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	s.testEraseDelay = 50 * time.Millisecond
	ctx := t.Context()
	canary := []byte("CanaryChildName-Sokha")
	body := append(append([]byte(`{"id":"case-1","name":"`), canary...), `"}`...)
	if _, err := s.InboxPut(ctx, engine.InboxItem{Inbox: "in", DeliveryID: "d1", RecordKey: "case-1", Body: body, Received: t0}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(fileBytes(t, path), canary) {
		t.Fatal("the pending body is not in the files: the grep below proves nothing")
	}
	pending, err := s.InboxPending(ctx, "in", 0)
	if err != nil || len(pending) != 1 {
		t.Fatalf("InboxPending = %v, %v", pending, err)
	}
	if err := s.InboxDone(ctx, pending[0].ID, t0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for bytes.Contains(fileBytes(t, path), canary) {
		if time.Now().After(deadline) {
			t.Fatal("the processed body is still in the state file or its -wal 10s after processing")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRetry_PushedBodyErased: a pushed record's body is kept with its
// queued failure, erased when it parks or succeeds, and then gone from the
// state file and its -wal within the erase delay.
func TestRetry_PushedBodyErased(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := openAt(t, path)
	s.testEraseDelay = 50 * time.Millisecond
	ctx := t.Context()
	run, err := s.StartRun(ctx, "p", "h", "inbox", t0)
	if err != nil {
		t.Fatal(err)
	}
	parkCanary, okCanary := []byte("CanaryParkedChild"), []byte("CanaryWrittenChild")
	fail := func(key string, body []byte) {
		t.Helper()
		commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0, Retry: engine.RetryPolicy{MaxAttempts: 2},
			Outcomes: []engine.Outcome{{RecordKey: key, Action: engine.ActionFailed, Reason: "http_503", Class: engine.ClassRetryable, Body: body}}})
	}
	fail("park-me", append([]byte(`{"name":"`), append(parkCanary, `"}`...)...))
	fail("write-me", append([]byte(`{"name":"`), append(okCanary, `"}`...)...))
	due, err := s.DueRetries(ctx, "p", t0.Add(time.Hour), 0)
	if err != nil || len(due) != 2 || len(due[0].Body) == 0 || len(due[1].Body) == 0 {
		t.Fatalf("DueRetries = %+v, %v; want both with their body", due, err)
	}
	fail("park-me", nil) // the second attempt parks it: its body goes
	commit(t, s, engine.PageCommit{RunID: run, Pipeline: "p", Now: t0,
		Outcomes: []engine.Outcome{{RecordKey: "write-me", Action: engine.ActionCreated, TargetID: "t-1"}}})
	fails, err := s.Failures(ctx, "p")
	if err != nil || len(fails) != 1 || !fails[0].Parked || fails[0].Body != nil {
		t.Fatalf("failures = %+v, %v; want park-me parked without a body", fails, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		raw := fileBytes(t, path)
		if !bytes.Contains(raw, parkCanary) && !bytes.Contains(raw, okCanary) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an erased body is still in the state file or its -wal 10s later")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
