package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"casesync/engine"

	"github.com/google/go-cmp/cmp"
)

// fileBytes reads the state file and whatever -wal, -shm and -intents sit
// beside it.
func fileBytes(tb testing.TB, path string) []byte {
	tb.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-intents"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			tb.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestStore_PrivacyOnlyIDsReachTheFile runs a synthetic case through every
// write path the runner uses and greps the raw file: the ids, hashes and
// codes passed in are there (so the grep works), the case's content is not,
// and an inbox body is gone once the delivery is done.
func TestStore_PrivacyOnlyIDsReachTheFile(t *testing.T) {
	tests := []struct {
		name    string
		padding int // bytes of narrative: large bodies spill into overflow pages
	}{
		{"small body", 0},
		{"body in overflow pages", 20000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			canaries := []string{"CanaryGivenName", "CanaryFamilyName", "2011-04-05", "CanaryVillage", "CanaryNarrative"}
			record := map[string]any{
				"case_id": "case-7f3a", "given_name": canaries[0], "family_name": canaries[1],
				"date_of_birth": canaries[2], "location": canaries[3],
				"narrative": canaries[4] + strings.Repeat(" x", tc.padding/2),
			}
			body, err := json.Marshal(record)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			hash := hex.EncodeToString(sum[:])
			ids := []string{"case-7f3a", "oscar-g-51", "txn-88", hash, "http_422", "cases_to_oscar", "ind-7f3a"}

			run, err := s.StartRun(ctx, "cases_to_oscar", "spec-9e1c", "cron", t0)
			if err != nil {
				t.Fatal(err)
			}
			commit(t, s, engine.PageCommit{RunID: run, Pipeline: "cases_to_oscar", Now: t0, Cursor: ptr("2026-02-28T00:00:00Z"),
				Outcomes: []engine.Outcome{
					{RecordKey: "case-7f3a", Action: engine.ActionCreated, TargetID: "oscar-g-51", Transaction: "txn-88", PayloadHash: hash,
						Link: &engine.Link{SystemA: "primero", IDA: "case-7f3a", SystemB: "oscar", IDB: "oscar-g-51"}},
					{RecordKey: "case-7f3b", Action: engine.ActionFailed, Reason: "http_422", Class: engine.ClassPermanent,
						Error: "POST /api/v1/clients: status 422: given_name is invalid", CursorValue: "2026-02-27T00:00:00Z",
						Link: &engine.Link{SystemA: "progres", IDA: "ind-7f3a", SystemB: "primero", IDB: "case-7f3a"}},
				}})
			if err := s.FinishRun(ctx, run, "failed", engine.Counts{Read: 2, Created: 1, Failed: 1}, "1 record failed", t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.InboxPut(ctx, engine.InboxItem{Inbox: "cases_to_oscar", DeliveryID: "d-" + hash[:16], RecordKey: "case-7f3a", Body: body, Received: t0}); err != nil {
				t.Fatal(err)
			}
			// Push the body from the WAL into the main file, where a delete
			// without secure_delete would leave it in a free page.
			if _, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				t.Fatal(err)
			}
			if raw := fileBytes(t, path); !bytes.Contains(raw, []byte(canaries[0])) {
				t.Fatal("the pending inbox body is not in the file: the grep below proves nothing")
			}
			pending, err := s.InboxPending(ctx, "cases_to_oscar", 0)
			if err != nil || len(pending) != 1 {
				t.Fatalf("InboxPending = %v, %v", pending, err)
			}
			if err := s.InboxDone(ctx, pending[0].ID, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			raw := fileBytes(t, path)
			for _, id := range ids {
				if !bytes.Contains(raw, []byte(id)) {
					t.Errorf("id %q is not in the file", id)
				}
			}
			for _, c := range canaries {
				if i := bytes.Index(raw, []byte(c)); i >= 0 {
					t.Errorf("case content %q is in the file at byte %d", c, i)
				}
			}
		})
	}
}

// TestStore_SchemaHoldsNoContentColumns pins every column of every table.
// Each holds an id, hash, code, sanitized error, time or count; the one
// exceptions are inbox.body and inbox.delivery (the delivery's query and
// non-credential headers), both erased once the delivery is processed
// (TestInbox_DeliveryErased). A new column fails this test until someone
// decides, here, that it holds no case content.
func TestStore_SchemaHoldsNoContentColumns(t *testing.T) {
	s := openTest(t)
	rows, err := s.r.QueryContext(t.Context(), `
		SELECT m.name, p.name FROM sqlite_schema AS m, pragma_table_info(m.name) AS p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := make(map[string][]string)
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		got[table] = append(got[table], col)
	}
	want := map[string][]string{
		"audit":   {"id", "at", "actor", "action", "pipeline", "record_key", "detail"},
		"cursors": {"pipeline", "value", "updated_at"},
		"inbox":   {"id", "inbox", "delivery_id", "record_key", "body", "received", "processed_at", "attempts", "delivery"},
		// the intent journal's name and how far it is folded (journal.go)
		"intent_journal": {"id", "gen", "folded"},
		"links":          {"system_a", "id_a", "system_b", "id_b", "pipeline", "created_at"},
		"outcomes":       {"id", "run_id", "record_key", "action", "reason", "error", "class", "target_id", "transaction_id", "payload_hash", "at"},
		"records":        {"pipeline", "record_key", "payload_hash", "target_id", "action", "updated_at"},
		// body: a pushed record (an inbox without fetch) waiting to be
		// retried, erased when it succeeds or is parked
		// (TestRetry_PushedBodyErased).
		"retry_queue": {"pipeline", "record_key", "attempts", "next_at", "last_error", "reason", "class", "cursor_value", "parked", "updated_at", "body"},
		"runs":        {"id", "pipeline", "spec_hash", "trigger", "started", "finished", "status", "counts", "error"},
		// version is a hash of the source's updated-at and the spec hash.
		"source_versions": {"pipeline", "record_key", "version", "updated_at"},
		"write_intents":   {"pipeline", "record_key", "payload_hash", "run_id", "at"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}
